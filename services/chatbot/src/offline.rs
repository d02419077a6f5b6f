//! The offline answerer, used when no Gemini key is configured: it retrieves the passages of the
//! course material most relevant to the question (BM25 over sentences of the lesson context, the
//! course description and the media titles and descriptions) and composes a Portuguese answer from
//! them, clearly marked as offline. Deterministic: same question and material, same answer.

use std::collections::HashMap;

use crate::engine::{Answer, Chunk, Question, MAX_MATERIAL_ITEMS};

/// The model name reported by the offline answerer.
pub const MODEL: &str = "offline-bm25";
/// The marker every offline answer starts with.
pub const MARKER: &str = "[modo offline]";

/// BM25 parameters (the usual ones) and how many passages an answer quotes.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineAnswerer {
    k1: f64,
    b: f64,
    max_passages: usize,
}

impl Default for OfflineAnswerer {
    fn default() -> Self {
        OfflineAnswerer {
            k1: 1.2,
            b: 0.75,
            max_passages: 3,
        }
    }
}

/// A retrievable piece of text and where it came from.
#[derive(Debug, Clone)]
struct Passage {
    text: String,
    source: String,
    /// Tokens indexed: the text's, plus the material title's, so "o vídeo sobre X" finds the
    /// sentences of the item titled X.
    tokens: Vec<String>,
}

impl OfflineAnswerer {
    pub fn new() -> OfflineAnswerer {
        OfflineAnswerer::default()
    }

    pub fn answer(&self, q: &Question) -> Answer {
        Answer {
            text: self.compose(q),
            model: MODEL.to_owned(),
            offline: true,
            tokens_in: 0,
            tokens_out: 0,
        }
    }

    /// The same answer as [`OfflineAnswerer::answer`], split at line breaks into a few chunks (their
    /// texts concatenate to the answer), then an empty final chunk.
    pub fn answer_chunks(&self, q: &Question) -> Vec<Chunk> {
        let text = self.compose(q);
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let per_chunk = lines.len().div_ceil(4).max(1);
        let chunk = |text: String, is_final: bool| Chunk {
            text,
            is_final,
            model: MODEL.to_owned(),
            offline: true,
            tokens_in: 0,
            tokens_out: 0,
        };
        let mut chunks: Vec<Chunk> = lines
            .chunks(per_chunk)
            .map(|group| chunk(group.concat(), false))
            .collect();
        chunks.push(chunk(String::new(), true));
        chunks
    }

    fn compose(&self, q: &Question) -> String {
        let passages = passages(q);
        let course_name = q
            .course
            .as_ref()
            .map(|c| c.nome.trim())
            .filter(|n| !n.is_empty());
        let ranked = self.rank(&passages, &tokenize(&q.duvida));
        let mut out = String::from(MARKER);
        if ranked.is_empty() {
            out.push_str(&format!(
                " Não encontrei no material disponível nada relacionado à sua dúvida (\"{}\").",
                shorten(q.duvida.trim(), 120)
            ));
            out.push_str(&overview(q, course_name));
            out.push_str(
                "\nTente reformular a pergunta com termos do material, ou pergunte de novo quando o \
                 assistente online estiver disponível.",
            );
            return out;
        }
        match course_name {
            Some(name) => out.push_str(&format!(
                " O assistente online não está disponível; esta resposta reúne os trechos do \
                 material do curso \"{name}\" mais relacionados à sua dúvida.\n"
            )),
            None => out.push_str(
                " O assistente online não está disponível; esta resposta reúne os trechos do \
                 material da aula mais relacionados à sua dúvida.\n",
            ),
        }
        let mut titles: Vec<&str> = Vec::new();
        for (n, &i) in ranked.iter().enumerate() {
            let p = &passages[i];
            out.push_str(&format!("{}. {} ({})\n", n + 1, p.text, p.source));
            if let Some(title) = p.source.strip_prefix("material: ") {
                if !titles.contains(&title) {
                    titles.push(title);
                }
            }
        }
        if titles.is_empty() {
            out.push_str("Releia o contexto da aula para mais detalhes.");
        } else {
            out.push_str(&format!(
                "Para se aprofundar, consulte: {}.",
                titles
                    .iter()
                    .map(|t| format!("\"{t}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out
    }

    /// Indexes of the best passages, best first (ties: document order), weak matches left out.
    fn rank(&self, passages: &[Passage], query: &[String]) -> Vec<usize> {
        let mut terms: Vec<&String> = Vec::new();
        for t in query {
            if !terms.contains(&t) {
                terms.push(t);
            }
        }
        if passages.is_empty() || terms.is_empty() {
            return Vec::new();
        }
        let n = passages.len() as f64;
        let avg_len = passages.iter().map(|p| p.tokens.len()).sum::<usize>() as f64 / n;
        let mut df: HashMap<&str, usize> = HashMap::new();
        for p in passages {
            let mut seen: Vec<&str> = Vec::new();
            for t in &p.tokens {
                if !seen.contains(&t.as_str()) {
                    seen.push(t);
                    *df.entry(t).or_default() += 1;
                }
            }
        }
        let mut scored: Vec<(usize, f64)> = passages
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let len = p.tokens.len() as f64;
                let score = terms
                    .iter()
                    .map(|term| {
                        let tf = p.tokens.iter().filter(|t| t == term).count() as f64;
                        if tf == 0.0 {
                            return 0.0;
                        }
                        let df = df.get(term.as_str()).copied().unwrap_or(0) as f64;
                        let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                        idf * tf * (self.k1 + 1.0)
                            / (tf + self.k1 * (1.0 - self.b + self.b * len / avg_len.max(1.0)))
                    })
                    .sum::<f64>();
                (i, score)
            })
            .filter(|(_, s)| *s > 0.0)
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let best = scored.first().map_or(0.0, |s| s.1);
        let mut picked: Vec<usize> = Vec::new();
        for (i, score) in scored {
            if picked.len() == self.max_passages || score < best * 0.25 {
                break;
            }
            if !picked.iter().any(|&j| passages[j].text == passages[i].text) {
                picked.push(i);
            }
        }
        picked
    }
}

/// What the course covers, for when nothing matched.
fn overview(q: &Question, course_name: Option<&str>) -> String {
    let Some(course) = &q.course else {
        let first = sentences(&q.aula_contexto).into_iter().next();
        return match first {
            Some(s) => format!("\nA aula trata de: {s}"),
            None => "\nNão há material do curso disponível para consulta offline.".into(),
        };
    };
    let mut out = String::new();
    let titles: Vec<String> = course
        .material
        .iter()
        .take(MAX_MATERIAL_ITEMS)
        .map(|m| m.titulo.trim())
        .filter(|t| !t.is_empty())
        .map(|t| format!("\"{t}\""))
        .collect();
    match course_name {
        Some(name) => out.push_str(&format!("\nO curso \"{name}\"")),
        None => out.push_str("\nEste curso"),
    }
    match sentences(&course.descricao).into_iter().next() {
        Some(s) => out.push_str(&format!(" trata de: {s}")),
        None => out.push_str(" não tem descrição."),
    }
    if titles.is_empty() {
        out.push_str("\nNão há material cadastrado para consulta offline.");
    } else {
        out.push_str(&format!("\nO material cobre: {}.", titles.join(", ")));
    }
    out
}

fn passages(q: &Question) -> Vec<Passage> {
    let mut out = Vec::new();
    let mut add = |text: String, source: String, extra: &[String]| {
        let mut tokens = tokenize(&text);
        tokens.extend_from_slice(extra);
        if !tokens.is_empty() {
            out.push(Passage {
                text,
                source,
                tokens,
            });
        }
    };
    for s in sentences(&q.aula_contexto) {
        add(s, "contexto da aula".into(), &[]);
    }
    if let Some(course) = &q.course {
        for s in sentences(&course.descricao) {
            add(s, "descrição do curso".into(), &[]);
        }
        for m in course.material.iter().take(MAX_MATERIAL_ITEMS) {
            let titulo = m.titulo.trim();
            let source = if titulo.is_empty() {
                "material do curso".to_owned()
            } else {
                format!("material: {titulo}")
            };
            let title_tokens = tokenize(titulo);
            let descricao = sentences(&m.descricao);
            if descricao.is_empty() {
                if !titulo.is_empty() {
                    add(titulo.to_owned(), source, &[]);
                }
            } else {
                for s in descricao {
                    add(s, source.clone(), &title_tokens);
                }
            }
        }
    }
    out
}

/// Sentences: split after `.`, `!`, `?` or `;` followed by a space, and at line breaks.
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let boundary = match c {
            '\n' | '\r' => true,
            '.' | '!' | '?' | ';' => {
                current.push(c);
                chars.peek().is_none_or(|n| n.is_whitespace())
            }
            _ => {
                current.push(c);
                false
            }
        };
        if boundary {
            let s = current.trim();
            if s.chars().filter(|c| c.is_alphanumeric()).count() >= 3 {
                out.push(s.to_owned());
            }
            current.clear();
        }
    }
    let s = current.trim();
    if s.chars().filter(|c| c.is_alphanumeric()).count() >= 3 {
        out.push(s.to_owned());
    }
    out
}

const STOPWORDS: &[&str] = &[
    "a", "o", "as", "os", "um", "uma", "uns", "umas", "de", "do", "da", "dos", "das", "em", "no",
    "na", "nos", "nas", "num", "numa", "por", "pelo", "pela", "pelos", "pelas", "para", "pra",
    "com", "sem", "sobre", "entre", "ate", "e", "ou", "mas", "que", "se", "como", "qual", "quais",
    "quando", "onde", "porque", "porqu", "quem", "ao", "aos", "ser", "sao", "foi", "era", "esta",
    "este", "isto", "isso", "esse", "essa", "aquilo", "aquele", "aquela", "ele", "ela", "eles",
    "elas", "eu", "voce", "voces", "meu", "minha", "seu", "sua", "ja", "nao", "sim", "mais",
    "menos", "muito", "muita", "tambem", "so", "ha", "tem", "ter", "estou", "estao", "fazer",
    "faz", "me", "te", "lhe", "nesse", "nessa", "neste", "nesta", "dele", "dela", "pode", "posso",
    "the", "an", "of", "to", "in", "is", "are", "what", "how", "why", "and", "or", "for", "on",
    "with", "does", "do", "it", "this", "that",
];

/// Lower case, accents folded, split at anything not alphanumeric, stopwords out, plurals folded.
pub(crate) fn tokenize(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.chars()
                .flat_map(char::to_lowercase)
                .map(fold)
                .collect::<String>()
        })
        .filter(|w| w.chars().count() >= 2 && !STOPWORDS.contains(&w.as_str()))
        .map(|w| stem(&w))
        .collect()
}

fn fold(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' => 'i',
        'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
        'ú' | 'ù' | 'û' | 'ü' => 'u',
        'ç' => 'c',
        'ñ' => 'n',
        other => other,
    }
}

/// Plural folding, then truncation to 6 characters: a crude stemmer, but enough for "funções" and
/// "função", or "descansa" and "descanso", to meet; BM25 absorbs the few false friends it makes.
fn stem(w: &str) -> String {
    let folded = fold_plural(w);
    match folded.char_indices().nth(6) {
        Some((cut, _)) if !folded.chars().all(|c| c.is_ascii_digit()) => folded[..cut].to_owned(),
        _ => folded,
    }
}

fn fold_plural(w: &str) -> String {
    if w.len() <= 3 || w.chars().all(|c| c.is_ascii_digit()) {
        return w.to_owned();
    }
    for (suffix, replacement) in [("oes", "ao"), ("aes", "ao"), ("ais", "al"), ("eis", "el")] {
        if let Some(root) = w.strip_suffix(suffix) {
            return format!("{root}{replacement}");
        }
    }
    if let Some(root) = w.strip_suffix("ns") {
        return format!("{root}m");
    }
    if let Some(root) = w.strip_suffix("es") {
        if root.ends_with(['r', 'z', 's']) {
            return root.to_owned();
        }
    }
    w.strip_suffix('s').unwrap_or(w).to_owned()
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{}…", cut.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_folds_accents_plurals_and_stopwords() {
        assert_eq!(
            tokenize("O que são as Funções e os vídeos?"),
            ["funcao", "video"]
        );
        assert_eq!(tokenize("função"), ["funcao"]);
        assert_eq!(tokenize("professores"), ["profes"]);
        assert_eq!(tokenize("descansa"), tokenize("descanso"));
        assert_eq!(tokenize("HTTP/2 em 2024"), ["http", "2024"]);
    }

    #[test]
    fn sentence_splitting() {
        assert_eq!(
            sentences("Primeira frase. Segunda! v1.2 fica inteira\nTerceira"),
            [
                "Primeira frase.",
                "Segunda!",
                "v1.2 fica inteira",
                "Terceira"
            ]
        );
    }
}
