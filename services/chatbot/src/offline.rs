//! The offline answerer, used when no Gemini key is configured: it retrieves the passages of the
//! course material most relevant to the question (BM25 over sentences of the lesson context, the
//! course description and the media titles and descriptions) and composes a Portuguese answer from
//! them, clearly marked as offline. Deterministic: same question and material, same answer.
//!
//! Its cost is linear in what it reads, and what it reads is capped ([`MAX_READ_CHARS`]: each
//! text up to the API's limit for its field, at most [`MAX_MATERIAL_ITEMS`] items), so no
//! material can make a question expensive. It runs on the blocking pool, a few answers at a time
//! ([`OfflineAnswerer::answer_within`]), never on the async workers that serve every other call,
//! and it is abandoned at the caller's deadline (or when the caller goes away): no question can
//! hold a thread longer than its deadline.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aula_api::limits;
use aula_runtime::fields::clip;
use tokio::sync::Semaphore;

use crate::domain::{Answer, AnswerError, Chunk, Question, MAX_MATERIAL_ITEMS};

/// The model name reported by the offline answerer.
pub const MODEL: &str = "offline-bm25";
/// The marker every offline answer starts with.
pub const MARKER: &str = "[modo offline]";

/// The most characters one answer reads: the lesson context, the course description and every
/// material item, each up to the API's limit for its field (longer texts are read up to it).
pub const MAX_READ_CHARS: usize = limits::LESSON_CONTEXT_CHARS
    + limits::COURSE_DESCRIPTION_CHARS
    + MAX_MATERIAL_ITEMS * (limits::MEDIA_TITLE_CHARS + limits::MEDIA_DESCRIPTION_CHARS);

/// The longest an answer may compute when the caller set a longer deadline, or none: an answer
/// over capped material takes milliseconds, so this only bounds the unforeseen.
pub const MAX_BUDGET: Duration = Duration::from_secs(10);

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
    /// The text's tokens.
    tokens: Vec<String>,
    /// The material item's title tokens ([`Corpus::titles`]), indexed with every sentence of the
    /// item so "o vídeo sobre X" finds the sentences of the item titled X. Shared, not copied
    /// into each sentence: copying made the cost grow with sentences times title length.
    title: Option<usize>,
}

/// The passages of one question's material.
#[derive(Debug, Default)]
struct Corpus {
    passages: Vec<Passage>,
    titles: Vec<Vec<String>>,
}

impl Corpus {
    fn title(&self, p: &Passage) -> &[String] {
        p.title.map_or(&[], |t| &self.titles[t])
    }
}

/// When to give up: the deadline, or the caller having gone away. Checked every few steps of
/// work, so an abandoned answer stops within microseconds.
struct Budget<'a> {
    deadline: Option<Instant>,
    abandoned: Option<&'a AtomicBool>,
    steps: Cell<u32>,
}

/// The budget ran out: the answer is abandoned.
#[derive(Debug)]
struct Expired;

impl Budget<'_> {
    fn unlimited() -> Self {
        Budget {
            deadline: None,
            abandoned: None,
            steps: Cell::new(0),
        }
    }

    fn check(&self) -> Result<(), Expired> {
        let steps = self.steps.get().wrapping_add(1);
        self.steps.set(steps);
        if !steps.is_multiple_of(64) {
            return Ok(());
        }
        let late = self.deadline.is_some_and(|d| Instant::now() >= d);
        let gone = self.abandoned.is_some_and(|a| a.load(Ordering::Relaxed));
        if late || gone {
            Err(Expired)
        } else {
            Ok(())
        }
    }
}

/// How many answers compute at once: one per core. More would only make each slower and
/// take threads from the blocking pool other work needs.
fn gate() -> &'static Semaphore {
    static GATE: OnceLock<Semaphore> = OnceLock::new();
    GATE.get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())))
}

/// Marks an answer abandoned when the future waiting for it is dropped (the caller went away
/// or the deadline passed), so the blocking thread stops too.
struct AbandonOnDrop(Arc<AtomicBool>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl OfflineAnswerer {
    pub fn new() -> OfflineAnswerer {
        OfflineAnswerer::default()
    }

    /// Answers on the calling thread, without a deadline (the cost is still capped by
    /// [`MAX_READ_CHARS`]). Services use [`Self::answer_within`].
    pub fn answer(&self, q: &Question) -> Answer {
        to_answer(
            self.compose(q, &Budget::unlimited())
                .expect("no budget to run out"),
        )
    }

    /// The same answer as [`OfflineAnswerer::answer`], split at line breaks into a few chunks (their
    /// texts concatenate to the answer), then an empty final chunk.
    pub fn answer_chunks(&self, q: &Question) -> Vec<Chunk> {
        to_chunks(
            self.compose(q, &Budget::unlimited())
                .expect("no budget to run out"),
        )
    }

    /// Answers on the blocking pool (one answer per core at a time), giving up at `deadline`
    /// (at most [`MAX_BUDGET`] from now) with [`AnswerError::Deadline`]; the computation itself
    /// stops then too, as it does when this future is dropped.
    pub async fn answer_within(
        &self,
        q: &Question,
        deadline: Option<Instant>,
    ) -> Result<Answer, AnswerError> {
        self.text_within(q, deadline).await.map(to_answer)
    }

    /// [`Self::answer_within`], as chunks.
    pub async fn chunks_within(
        &self,
        q: &Question,
        deadline: Option<Instant>,
    ) -> Result<Vec<Chunk>, AnswerError> {
        self.text_within(q, deadline).await.map(to_chunks)
    }

    async fn text_within(
        &self,
        q: &Question,
        deadline: Option<Instant>,
    ) -> Result<String, AnswerError> {
        let cap = Instant::now() + MAX_BUDGET;
        let deadline = deadline.map_or(cap, |d| d.min(cap));
        let until = tokio::time::Instant::from_std(deadline);
        let permit = tokio::time::timeout_at(until, gate().acquire())
            .await
            .map_err(|_| AnswerError::Deadline)?
            .expect("the gate is never closed");
        let abandoned = Arc::new(AtomicBool::new(false));
        let _abandon = AbandonOnDrop(abandoned.clone());
        let (this, q) = (self.clone(), q.clone());
        let work = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let budget = Budget {
                deadline: Some(deadline),
                abandoned: Some(&abandoned),
                steps: Cell::new(0),
            };
            this.compose(&q, &budget)
        });
        match tokio::time::timeout_at(until, work).await {
            Ok(Ok(Ok(text))) => Ok(text),
            Ok(Ok(Err(Expired))) | Err(_) => Err(AnswerError::Deadline),
            Ok(Err(join)) => std::panic::resume_unwind(join.into_panic()),
        }
    }

    fn compose(&self, q: &Question, budget: &Budget) -> Result<String, Expired> {
        let corpus = corpus(q, budget)?;
        let course_name = q
            .course
            .as_ref()
            .map(|c| clip(c.nome.trim(), limits::COURSE_NAME_CHARS))
            .filter(|n| !n.is_empty());
        let duvida = clip(&q.duvida, limits::QUESTION_CHARS);
        let ranked = self.rank(&corpus, &tokenize(duvida), budget)?;
        let mut out = String::from(MARKER);
        if ranked.is_empty() {
            out.push_str(&format!(
                " Não encontrei no material disponível nada relacionado à sua dúvida (\"{}\").",
                shorten(duvida.trim(), 120)
            ));
            out.push_str(&overview(q, course_name));
            out.push_str(
                "\nTente reformular a pergunta com termos do material, ou pergunte de novo quando o \
                 assistente online estiver disponível.",
            );
            return Ok(out);
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
            let p = &corpus.passages[i];
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
        Ok(out)
    }

    /// Indexes of the best passages, best first (ties: document order), weak matches left out.
    /// Linear in the corpus: each token is looked up once among the query's terms, and only
    /// the terms a passage contains are scored.
    fn rank(
        &self,
        corpus: &Corpus,
        query: &[String],
        budget: &Budget,
    ) -> Result<Vec<usize>, Expired> {
        let passages = &corpus.passages;
        // The query's distinct terms, in order; a term's index is its place here.
        let mut terms: HashMap<&str, usize> = HashMap::new();
        for t in query {
            let next = terms.len();
            terms.entry(t.as_str()).or_insert(next);
        }
        if passages.is_empty() || terms.is_empty() {
            return Ok(Vec::new());
        }
        let counts = |tokens: &[String], tf: &mut HashMap<usize, f64>| {
            for t in tokens {
                if let Some(&i) = terms.get(t.as_str()) {
                    *tf.entry(i).or_default() += 1.0;
                }
            }
        };
        // Term frequencies of each passage (its text and its item's title), as (term, tf)
        // in query order so that scores add up in the same order every time.
        let mut df = vec![0usize; terms.len()];
        let mut total_len = 0usize;
        let mut tfs: Vec<Vec<(usize, f64)>> = Vec::with_capacity(passages.len());
        for p in passages {
            budget.check()?;
            let mut tf = HashMap::new();
            counts(&p.tokens, &mut tf);
            counts(corpus.title(p), &mut tf);
            let mut tf: Vec<(usize, f64)> = tf.into_iter().collect();
            tf.sort_unstable_by_key(|&(i, _)| i);
            for &(i, _) in &tf {
                df[i] += 1;
            }
            total_len += p.tokens.len() + corpus.title(p).len();
            tfs.push(tf);
        }
        let n = passages.len() as f64;
        let avg_len = total_len as f64 / n;
        let mut scored: Vec<(usize, f64)> = Vec::new();
        for (i, (p, tf)) in passages.iter().zip(&tfs).enumerate() {
            budget.check()?;
            let len = (p.tokens.len() + corpus.title(p).len()) as f64;
            let score = tf
                .iter()
                .map(|&(term, tf)| {
                    let df = df[term] as f64;
                    let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                    idf * tf * (self.k1 + 1.0)
                        / (tf + self.k1 * (1.0 - self.b + self.b * len / avg_len.max(1.0)))
                })
                .sum::<f64>();
            if score > 0.0 {
                scored.push((i, score));
            }
        }
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
        Ok(picked)
    }
}

fn to_answer(text: String) -> Answer {
    Answer {
        text,
        model: MODEL.to_owned(),
        offline: true,
        tokens_in: 0,
        tokens_out: 0,
    }
}

fn to_chunks(text: String) -> Vec<Chunk> {
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

/// What the course covers, for when nothing matched.
fn overview(q: &Question, course_name: Option<&str>) -> String {
    let Some(course) = &q.course else {
        let first = first_sentence(clip(&q.aula_contexto, limits::LESSON_CONTEXT_CHARS));
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
        .map(|m| clip(m.titulo.trim(), limits::MEDIA_TITLE_CHARS))
        .filter(|t| !t.is_empty())
        .map(|t| format!("\"{t}\""))
        .collect();
    match course_name {
        Some(name) => out.push_str(&format!("\nO curso \"{name}\"")),
        None => out.push_str("\nEste curso"),
    }
    match first_sentence(clip(&course.descricao, limits::COURSE_DESCRIPTION_CHARS)) {
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

/// The passages of a question's material, each text read up to its field's limit.
fn corpus(q: &Question, budget: &Budget) -> Result<Corpus, Expired> {
    let mut corpus = Corpus::default();
    let add = |corpus: &mut Corpus, text: String, source: &str, title: Option<usize>| {
        let tokens = tokenize(&text);
        if !tokens.is_empty() || title.is_some_and(|t| !corpus.titles[t].is_empty()) {
            corpus.passages.push(Passage {
                text,
                source: source.to_owned(),
                tokens,
                title,
            });
        }
    };
    for s in sentences(clip(&q.aula_contexto, limits::LESSON_CONTEXT_CHARS), budget)? {
        add(&mut corpus, s, "contexto da aula", None);
    }
    if let Some(course) = &q.course {
        for s in sentences(
            clip(&course.descricao, limits::COURSE_DESCRIPTION_CHARS),
            budget,
        )? {
            add(&mut corpus, s, "descrição do curso", None);
        }
        for m in course.material.iter().take(MAX_MATERIAL_ITEMS) {
            budget.check()?;
            let titulo = clip(m.titulo.trim(), limits::MEDIA_TITLE_CHARS);
            let source = if titulo.is_empty() {
                "material do curso".to_owned()
            } else {
                format!("material: {titulo}")
            };
            let descricao = sentences(clip(&m.descricao, limits::MEDIA_DESCRIPTION_CHARS), budget)?;
            if descricao.is_empty() {
                if !titulo.is_empty() {
                    add(&mut corpus, titulo.to_owned(), &source, None);
                }
            } else {
                corpus.titles.push(tokenize(titulo));
                let title = Some(corpus.titles.len() - 1);
                for s in descricao {
                    add(&mut corpus, s, &source, title);
                }
            }
        }
    }
    Ok(corpus)
}

/// The first sentence of `text`, for an overview (reads no further than it).
fn first_sentence(text: &str) -> Option<String> {
    let budget = Budget::unlimited();
    let mut rest = text;
    while !rest.is_empty() {
        // Sentences end at a line break at the latest: look at one line at a time.
        let (line, tail) = rest.split_once(['\n', '\r']).unwrap_or((rest, ""));
        if let Some(s) = sentences(line, &budget).ok()?.into_iter().next() {
            return Some(s);
        }
        rest = tail;
    }
    None
}

/// Sentences: split after `.`, `!`, `?` or `;` followed by a space, and at line breaks.
fn sentences(text: &str, budget: &Budget) -> Result<Vec<String>, Expired> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        budget.check()?;
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
    Ok(out)
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
            sentences(
                "Primeira frase. Segunda! v1.2 fica inteira\nTerceira",
                &Budget::unlimited()
            )
            .unwrap(),
            [
                "Primeira frase.",
                "Segunda!",
                "v1.2 fica inteira",
                "Terceira"
            ]
        );
    }

    fn big_question() -> Question {
        let words = aula_runtime::fields::clip(&"palavra ".repeat(400), 2000).to_string();
        Question {
            aula_contexto: "Contexto. ".repeat(5000),
            duvida: "palavra?".into(),
            course: Some(crate::domain::CourseContext {
                material: vec![
                    crate::domain::Material {
                        titulo: "t".into(),
                        descricao: words,
                        tipo: "texto".into(),
                    };
                    MAX_MATERIAL_ITEMS
                ],
                ..Default::default()
            }),
        }
    }

    #[tokio::test]
    async fn an_answer_is_abandoned_at_its_deadline() {
        let o = OfflineAnswerer::new();
        let past = Instant::now();
        assert_eq!(
            o.answer_within(&big_question(), Some(past)).await,
            Err(AnswerError::Deadline)
        );
        // With time left, the same question is answered.
        let later = Instant::now() + Duration::from_secs(60);
        assert!(o.answer_within(&big_question(), Some(later)).await.is_ok());
    }

    #[test]
    fn an_abandoned_answer_stops_computing() {
        let gone = AtomicBool::new(true);
        let budget = Budget {
            deadline: None,
            abandoned: Some(&gone),
            steps: Cell::new(0),
        };
        assert!(OfflineAnswerer::new()
            .compose(&big_question(), &budget)
            .is_err());
    }

    #[test]
    fn what_is_read_is_capped() {
        // Material beyond the limits is read up to them: an answer over a description of a
        // million words costs what one over 2,000 characters does.
        let mut q = big_question();
        let course = q.course.as_mut().unwrap();
        course.material[0].descricao = "palavra ".repeat(1_000_000);
        let capped = corpus(&q, &Budget::unlimited()).unwrap();
        let read: usize = capped.passages.iter().map(|p| p.text.chars().count()).sum();
        assert!(read <= MAX_READ_CHARS, "{read}");
    }
}
