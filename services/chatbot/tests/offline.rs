//! The offline answerer: retrieval over the course material, deterministic, marked offline.

use chatbot::{AnswerError, CourseContext, Engine, Material, Question};
use futures::StreamExt;

fn offline() -> Engine {
    let engine = Engine::from_env(&|_: &str| None).unwrap();
    assert_eq!(engine.mode(), "offline");
    engine
}

fn course() -> CourseContext {
    CourseContext {
        id: "7".into(),
        nome: "Culinária Italiana".into(),
        descricao: "Técnicas clássicas da cozinha italiana. Do molho ao forno.".into(),
        material: vec![
            Material {
                titulo: "Massa fresca".into(),
                descricao: "Como preparar massa fresca com farinha e ovos. O descanso da massa \
                            leva trinta minutos na geladeira."
                    .into(),
                tipo: "video".into(),
            },
            Material {
                titulo: "Molho de tomate".into(),
                descricao: "Tomates pelados cozidos lentamente com alho e manjericão. Acerte o \
                            sal no final."
                    .into(),
                tipo: "pdf".into(),
            },
            Material {
                titulo: "Pizza napolitana".into(),
                descricao: "O forno a lenha chega a 450 graus e assa a pizza em noventa segundos."
                    .into(),
                tipo: "video".into(),
            },
        ],
    }
}

fn ask(duvida: &str) -> Question {
    Question {
        aula_contexto: "Aula 2: massas e molhos básicos.".into(),
        duvida: duvida.into(),
        course: Some(course()),
    }
}

/// The offline answer to `duvida` on the course; it never fails for a real question.
async fn answer(engine: &Engine, duvida: &str) -> chatbot::Answer {
    engine.answer(&ask(duvida), None).await.unwrap()
}

#[tokio::test]
async fn answers_from_the_material_relevant_to_the_question() {
    let engine = offline();

    let massa = answer(&engine, "Quanto tempo a massa descansa?").await;
    let forno = answer(&engine, "Qual a temperatura do forno para pizza?").await;

    assert!(massa.offline && forno.offline);
    assert_eq!(massa.model, "offline-bm25");
    assert!(massa.text.starts_with("[modo offline]"), "{}", massa.text);
    assert!(forno.text.starts_with("[modo offline]"), "{}", forno.text);
    assert!(
        massa
            .text
            .contains("\n1. O descanso da massa leva trinta minutos"),
        "the best passage comes first: {}",
        massa.text
    );
    assert!(massa.text.contains("\"Massa fresca\""), "{}", massa.text);
    assert!(forno.text.contains("450 graus"), "{}", forno.text);
    assert!(
        forno.text.contains("\"Pizza napolitana\""),
        "{}",
        forno.text
    );
    assert!(!forno.text.contains("trinta minutos"), "{}", forno.text);
    assert_ne!(massa.text, forno.text);
}

#[tokio::test]
async fn accents_and_plurals_do_not_matter() {
    let engine = offline();
    let answer = answer(&engine, "manjericao e TOMATE no molho?").await;
    assert!(answer.text.contains("manjericão"), "{}", answer.text);
}

#[tokio::test]
async fn is_deterministic() {
    let engine = offline();
    let q = ask("Como fazer o molho de tomate?");
    let first = engine.answer(&q, None).await.unwrap();
    for _ in 0..5 {
        assert_eq!(engine.answer(&q, None).await.unwrap(), first);
        assert_eq!(offline().answer(&q, None).await.unwrap(), first);
    }
}

#[tokio::test]
async fn without_a_match_says_so_and_lists_what_the_course_covers() {
    let answer = answer(&offline(), "Como configurar o Kubernetes?").await;
    let text = &answer.text;
    assert!(text.starts_with("[modo offline]"), "{text}");
    assert!(text.contains("Não encontrei"), "{text}");
    assert!(text.contains("Kubernetes"), "echoes the question: {text}");
    for title in ["Massa fresca", "Molho de tomate", "Pizza napolitana"] {
        assert!(text.contains(title), "{title} missing: {text}");
    }
}

#[tokio::test]
async fn works_from_the_lesson_context_alone() {
    let q = Question {
        aula_contexto: "Closures capturam variáveis do ambiente. Iteradores são preguiçosos e \
                        só avançam com next."
            .into(),
        duvida: "O que os iteradores fazem?".into(),
        course: None,
    };
    let answer = offline().answer(&q, None).await.unwrap();
    assert!(answer.text.contains("preguiçosos"), "{}", answer.text);
    assert!(!answer.text.contains("Closures"), "{}", answer.text);
}

#[tokio::test]
async fn streams_the_same_answer_in_a_few_chunks() {
    let engine = offline();
    let q = ask("Quanto tempo a massa descansa?");
    let answer = engine.answer(&q, None).await.unwrap();

    let chunks: Vec<_> = engine.answer_stream(&q, None).collect().await;
    let chunks: Vec<_> = chunks.into_iter().map(Result::unwrap).collect();

    assert!(chunks.len() >= 3, "{chunks:?}");
    let (last, rest) = chunks.split_last().unwrap();
    assert!(last.is_final && last.text.is_empty());
    assert!(rest
        .iter()
        .all(|c| !c.is_final && c.offline && c.model == "offline-bm25"));
    let joined: String = rest.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(joined, answer.text);
}

#[tokio::test]
async fn a_blank_question_is_invalid() {
    let engine = offline();
    let err = engine.answer(&ask("  "), None).await.unwrap_err();
    assert!(
        matches!(
            err,
            AnswerError::Invalid {
                field: "duvida",
                ..
            }
        ),
        "{err:?}"
    );
    let first = engine.answer_stream(&ask(""), None).next().await.unwrap();
    assert!(matches!(
        first,
        Err(AnswerError::Invalid {
            field: "duvida",
            ..
        })
    ));
}
