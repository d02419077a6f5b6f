//! The final read: everything the writers touched, read back through the public API (the
//! way a user would find it), after every fault is healed and the outboxes have drained.

use super::{
    check::{Observed, SeenSchedule},
    history::History,
    workload::Clients,
};
use anyhow::{bail, Context as _};
use aula_api::*;
use futures::{stream, StreamExt, TryStreamExt};
use std::{
    collections::{BTreeSet, HashMap},
    future::Future,
    time::Duration,
};
use tokio::time::Instant;

/// Reads are retried: the services were just restarted and their peers may still be
/// reconnecting. A read that keeps failing stops the check (no verdict without a read).
async fn retry<T, F, Fut>(what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let mut last = None;
    for _ in 0..40 {
        match tokio::time::timeout(Duration::from_secs(10), f()).await {
            Ok(Ok(r)) => return Ok(r.into_inner()),
            Ok(Err(s)) => last = Some(format!("{:?}: {}", s.code(), s.message())),
            Err(_) => last = Some("no answer in 10s".into()),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!("reading {what} failed: {}", last.unwrap_or_default())
}

const PARALLEL: usize = 8;

/// Every page of a paged list: `read(token)` asks for one page ([`retry`]ing it), `split`
/// takes its items and the next page's token (empty after the last page).
async fn every_page<P, T, F, Fut>(
    what: &str,
    mut read: F,
    split: impl Fn(P) -> (Vec<T>, String),
) -> anyhow::Result<Vec<T>>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<tonic::Response<P>, tonic::Status>>,
{
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let (items, next) = split(retry(what, || read(token.clone())).await?);
        out.extend(items);
        if next.is_empty() {
            return Ok(out);
        }
        token = next;
    }
}

/// `read(key)` for every key, [`PARALLEL`] at a time.
async fn read_each<K, V, F, Fut>(
    keys: impl IntoIterator<Item = K>,
    read: F,
) -> anyhow::Result<HashMap<K, V>>
where
    K: Clone + Eq + std::hash::Hash,
    F: Fn(K) -> Fut,
    Fut: Future<Output = anyhow::Result<V>>,
{
    stream::iter(keys)
        .map(|key| {
            let value = read(key.clone());
            async move { Ok::<_, anyhow::Error>((key, value.await?)) }
        })
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await
}

/// The catalogue, every page.
pub async fn courses(c: &Clients) -> anyhow::Result<Vec<(i64, String)>> {
    let read = |page_token| {
        let mut cl = c.cursos.clone();
        let page = ListCoursesRequest {
            page_size: 100,
            page_token,
        };
        async move { cl.list_courses(page).await }
    };
    every_page("the catalogue", read, |page| {
        let courses = page.cursos.into_iter();
        let courses = courses.map(|c| (i64::from(c.id), c.nome)).collect();
        (courses, page.next_page_token)
    })
    .await
}

async fn notifications(c: &Clients, user: i64) -> anyhow::Result<Vec<(String, String)>> {
    let read = |page_token| {
        let mut cl = c.notificacoes.clone();
        let page = ListNotificationsRequest {
            id_usuario: user.to_string(),
            unread_only: false,
            page_size: 100,
            page_token,
        };
        async move { cl.list_notifications(page).await }
    };
    every_page(&format!("user {user}'s notifications"), read, |page| {
        let notices = page.notificacoes.into_iter().map(|n| (n.id, n.message));
        (notices.collect(), page.next_page_token)
    })
    .await
}

async fn schedules(c: &Clients, user: i64) -> anyhow::Result<Vec<SeenSchedule>> {
    let read = |page_token| {
        let mut cl = c.cpar.clone();
        let page = ListSchedulesRequest {
            id_usuario: user.to_string(),
            page_size: 100,
            page_token,
        };
        async move { cl.list_schedules(page).await }
    };
    let what = format!("user {user}'s appointments");
    let schedules = every_page(&what, read, |page| {
        (page.agendamentos, page.next_page_token)
    });
    let seen = |s: Schedule| {
        Ok(SeenSchedule {
            id: s.id_agendamento.parse().context("a schedule id")?,
            titulo: s.titulo,
            estado: s.estado,
        })
    };
    schedules.await?.into_iter().map(seen).collect()
}

/// The courses `user` is enrolled in.
async fn enrolments(c: &Clients, user: i64) -> anyhow::Result<BTreeSet<i64>> {
    let r = retry(&format!("user {user}'s courses"), || {
        let mut cl = c.cursos.clone();
        let user = GetUserCoursesRequest {
            id_usuario: user.to_string(),
        };
        async move { cl.get_user_courses(user).await }
    })
    .await?;
    Ok(r.cursos_inscritos.iter().map(|c| i64::from(c.id)).collect())
}

/// A course's media items: (id, title).
async fn media(c: &Clients, course: i64) -> anyhow::Result<Vec<(i64, String)>> {
    let r = retry(&format!("course {course}'s media"), || {
        let mut cl = c.midia.clone();
        let course = GetCourseMediaRequest {
            id_curso: course.to_string(),
        };
        async move { cl.get_media(course).await }
    })
    .await?;
    Ok(r.itens.into_iter().map(|i| (i.id, i.titulo)).collect())
}

/// Waits until cursos' and cpar's outboxes are empty; returns what is still pending when
/// `within` runs out (0 when drained).
pub async fn drain(c: &Clients, within: Duration) -> anyhow::Result<i64> {
    let deadline = Instant::now() + within;
    loop {
        let cursos = retry("cursos' status", || {
            let mut cl = c.cursos.clone();
            async move { cl.get_status(Empty {}).await }
        })
        .await?;
        let cpar = retry("cpar's status", || {
            let mut cl = c.cpar.clone();
            async move { cl.get_status(Empty {}).await }
        })
        .await?;
        let pending = cursos
            .contagens
            .get("outbox_pendentes")
            .copied()
            .unwrap_or(0)
            + cpar
                .contagens
                .get("notificacoes_pendentes")
                .copied()
                .unwrap_or(0);
        if pending == 0 || Instant::now() >= deadline {
            return Ok(pending);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until insights holds at least `expected` interactions for `courses`, or the count
/// stops growing for a few seconds (the chatbot records answers in the background).
pub async fn settle_records(
    c: &Clients,
    courses: &[i64],
    expected: i64,
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    let mut last = (-1, Instant::now());
    loop {
        let mut total = 0;
        for course in courses {
            total += retry("course insights", || {
                let mut cl = c.insights.clone();
                async move {
                    cl.get_course_insights(GetCourseInsightsRequest {
                        id_curso: course.to_string(),
                    })
                    .await
                }
            })
            .await?
            .total_perguntas;
        }
        if total != last.0 {
            last = (total, Instant::now());
        }
        if total >= expected
            || last.1.elapsed() > Duration::from_secs(4)
            || Instant::now() >= deadline
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Reads back everything the history touched.
pub async fn read(
    c: &Clients,
    history: &History,
    courses: &[(i64, String)],
) -> anyhow::Result<Observed> {
    let mut seen = Observed {
        course_names: courses.iter().cloned().collect(),
        ..Default::default()
    };

    let enrol_users: BTreeSet<i64> = history.enrolments.iter().map(|e| e.user).collect();
    seen.enrolments = read_each(enrol_users.iter().copied(), |user| enrolments(c, user)).await?;

    let notice_users: BTreeSet<i64> = enrol_users
        .iter()
        .copied()
        .chain(history.notices.iter().map(|n| n.user))
        .chain(history.appointments.iter().map(|a| a.user))
        .collect();
    seen.notifications = read_each(notice_users, |user| notifications(c, user)).await?;

    let schedule_users: BTreeSet<i64> = history.appointments.iter().map(|a| a.user).collect();
    seen.schedules = read_each(schedule_users, |user| schedules(c, user)).await?;

    let media_courses: BTreeSet<i64> = history.media.iter().map(|m| m.course).collect();
    seen.media = read_each(media_courses, |course| media(c, course)).await?;

    // insights has no read by id: recording an id again answers `registrada = false` when it
    // was already there. (This writes the missing ones: the read comes last.)
    let probes: Vec<(String, i64)> = history
        .interactions
        .iter()
        .map(|i| (i.id.clone(), i.course))
        .chain(
            history
                .questions
                .iter()
                .filter_map(|q| Some((q.id_interacao.clone()?, q.course))),
        )
        .collect();
    seen.interactions = stream::iter(probes)
        .map(|(id, course)| async move {
            let r = retry(&format!("interaction {id}"), || {
                let mut cl = c.insights.clone();
                let probe = RecordInteractionRequest {
                    id_interacao: id.clone(),
                    id_curso: course.to_string(),
                    id_usuario: String::new(),
                    latencia_ms: 0,
                    modelo: "faults-probe".into(),
                    sucesso: false,
                };
                async move { cl.record_interaction(probe).await }
            })
            .await?;
            Ok::<_, anyhow::Error>((id, !r.registrada))
        })
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await?;
    Ok(seen)
}
