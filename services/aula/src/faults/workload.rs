//! The writers: each drives every kind of write the API has, one call after another, and
//! records what each call answered. Every write carries a token unique to the run (in a
//! message, a title, an id) so the final read can find it, count it, and tell it from the
//! others.
//!
//! Each writer owns its users and courses (ranges of their own, far from the demo data), so
//! the final state of everything it touched is decided by its own history alone.

use super::history::{
    Appointment, Enrolment, History, Interaction, Media, Notice, NoticeVia, Outcome, Question,
};
use aula_api::{
    cpar_service_client::CparServiceClient, cursos_service_client::CursosServiceClient,
    insights_service_client::InsightsServiceClient,
    midia_conteudo_service_client::MidiaConteudoServiceClient,
    notificacoes_service_client::NotificacoesServiceClient, *,
};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::time::Instant;
use tonic::{transport::Channel, Response, Status};

/// A client of each service the writers and the final read call.
#[derive(Clone)]
pub struct Clients {
    pub cursos: CursosServiceClient<Channel>,
    pub cpar: CparServiceClient<Channel>,
    pub notificacoes: NotificacoesServiceClient<Channel>,
    pub insights: InsightsServiceClient<Channel>,
    pub midia: MidiaConteudoServiceClient<Channel>,
}

impl Clients {
    /// Lazily connected channels; they reconnect by themselves after a service restarts.
    pub fn new(url: impl Fn(&str) -> String) -> anyhow::Result<Self> {
        let channel = |name: &str| -> anyhow::Result<Channel> {
            Ok(tonic::transport::Endpoint::from_shared(url(name))?
                .connect_timeout(Duration::from_secs(1))
                .tcp_nodelay(true)
                .connect_lazy())
        };
        Ok(Self {
            cursos: CursosServiceClient::new(channel("cursos")?),
            cpar: CparServiceClient::new(channel("cpar")?),
            notificacoes: NotificacoesServiceClient::new(channel("notificacoes")?),
            insights: InsightsServiceClient::new(channel("insights")?),
            midia: MidiaConteudoServiceClient::new(channel("midia")?),
        })
    }
}

/// Live counts for the progress line.
#[derive(Default)]
pub struct Counters {
    pub acked: AtomicU64,
    pub failed: AtomicU64,
    pub indeterminate: AtomicU64,
}

impl Counters {
    fn count(&self, o: Outcome) {
        match o {
            Outcome::Acked => &self.acked,
            Outcome::Failed => &self.failed,
            Outcome::Indeterminate => &self.indeterminate,
        }
        .fetch_add(1, Ordering::Relaxed);
    }
}

/// What every writer shares.
pub struct Plan {
    pub seed: u64,
    /// The catalogue (id, name) for Enroll and AskQuestion.
    pub courses: Vec<(i64, String)>,
    /// Deadline of each call.
    pub timeout: Duration,
    pub counters: Counters,
}

// Each writer's ids, in ranges of their own: writer w's enrolment users are
// 1_000_000 + w * 100_000 + n, and so on. Far from the demo data (users 1.., courses 1..5).
const ENROL_USERS: i64 = 1_000_000;
const NOTICE_USERS: i64 = 2_000_000;
const SCHEDULE_USERS: i64 = 3_000_000;
const MEDIA_COURSES: i64 = 4_000_000;
const INSIGHT_COURSES: i64 = 5_000_000;
const QUESTION_USERS: i64 = 6_000_000;

struct Writer {
    w: i64,
    n: u64,
    rng: StdRng,
    clients: Clients,
    plan: Arc<Plan>,
    history: History,
}

/// Runs writer `w` until `until`; returns its history.
pub async fn run(w: usize, clients: Clients, plan: Arc<Plan>, until: Instant) -> History {
    let mut writer = Writer {
        w: w as i64,
        n: 0,
        rng: StdRng::seed_from_u64(
            plan.seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(w as u64 + 1)),
        ),
        clients,
        plan,
        history: History::default(),
    };
    while Instant::now() < until {
        writer.n += 1;
        match writer.rng.random_range(0..14u32) {
            0..=2 => writer.enrolment().await,
            3..=6 => writer.notice().await,
            7..=8 => writer.appointment().await,
            9..=10 => writer.media().await,
            11..=12 => writer.interaction().await,
            _ => writer.question().await,
        }
    }
    writer.history
}

impl Writer {
    fn token(&self) -> String {
        format!("#w{}n{}#", self.w, self.n)
    }

    /// One call with the run's deadline; records its outcome, and after one that may mean
    /// the service is down, pauses briefly: writers must not storm a dead port.
    async fn call<T>(
        &mut self,
        fut: impl Future<Output = Result<Response<T>, Status>>,
    ) -> (Outcome, Option<T>) {
        let result = match tokio::time::timeout(self.plan.timeout, fut).await {
            Ok(r) => r.map(Response::into_inner),
            Err(_) => Err(Status::deadline_exceeded(
                "no answer within the harness's timeout",
            )),
        };
        let outcome = Outcome::of(&result);
        self.plan.counters.count(outcome);
        if outcome == Outcome::Indeterminate {
            let pause = self.rng.random_range(100..400);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        (outcome, result.ok())
    }

    /// A new user enrols in one to three courses, and sometimes leaves one again.
    async fn enrolment(&mut self) {
        let user = ENROL_USERS + self.w * 100_000 + self.n as i64;
        let mut courses = self.plan.courses.clone();
        let take = self.rng.random_range(1..=3usize).min(courses.len());
        let mut mine = Vec::new();
        for _ in 0..take {
            let (course, _) = courses.remove(self.rng.random_range(0..courses.len()));
            let mut client = self.clients.cursos.clone();
            let (outcome, answer) = self
                .call(client.enroll(EnrollRequest {
                    id_usuario: user.to_string(),
                    id_curso: course.to_string(),
                }))
                .await;
            mine.push(Enrolment {
                user,
                course,
                enroll: outcome,
                nova: answer.map(|a| a.nova_inscricao),
                unenroll: None,
            });
        }
        if self.rng.random_bool(0.3) {
            let acked: Vec<usize> = (0..mine.len())
                .filter(|&i| mine[i].enroll == Outcome::Acked)
                .collect();
            if !acked.is_empty() {
                let i = acked[self.rng.random_range(0..acked.len())];
                let mut client = self.clients.cursos.clone();
                let (outcome, _) = self
                    .call(client.unenroll(UnenrollRequest {
                        id_usuario: user.to_string(),
                        id_curso: mine[i].course.to_string(),
                    }))
                    .await;
                mine[i].unenroll = Some(outcome);
            }
        }
        self.history.enrolments.extend(mine);
    }

    /// A notification through cursos' outbox or straight to notificacoes, with or without an
    /// idempotency key. A keyed one is retried while the outcome is unknown, and sometimes
    /// sent once more after it was acknowledged (a client retrying a lost answer).
    async fn notice(&mut self) {
        let via = if self.rng.random_bool(0.5) {
            NoticeVia::Cursos
        } else {
            NoticeVia::Notificacoes
        };
        let keyed = self.rng.random_bool(0.5);
        let user = NOTICE_USERS + self.w * 1_000 + self.rng.random_range(0..20);
        let token = self.token();
        let request = SendNotificationRequest {
            id_usuario: user.to_string(),
            message: format!("Aviso do teste de falhas {token}"),
            chave_idempotencia: if keyed {
                format!("faults-{}-{token}", self.plan.seed)
            } else {
                String::new()
            },
            origem: "faults".into(),
        };
        let mut notice = Notice {
            via,
            keyed,
            user,
            token,
            attempts: Vec::new(),
            id: None,
        };
        let max_attempts = if keyed { 3 } else { 1 };
        let mut extra_retry = keyed && self.rng.random_bool(0.25);
        loop {
            let (outcome, answer) = match via {
                NoticeVia::Cursos => {
                    let mut c = self.clients.cursos.clone();
                    let (o, a) = self.call(c.send_notification(request.clone())).await;
                    (o, a.map(|a| a.id_notificacao))
                }
                NoticeVia::Notificacoes => {
                    let mut c = self.clients.notificacoes.clone();
                    let (o, a) = self.call(c.send_notification(request.clone())).await;
                    (o, a.map(|a| a.id_notificacao))
                }
            };
            notice.attempts.push(outcome);
            if via == NoticeVia::Notificacoes {
                if let Some(id) = answer.filter(|id| !id.is_empty()) {
                    notice.id = Some(id);
                }
            }
            let again = match outcome {
                Outcome::Indeterminate => notice.attempts.len() < max_attempts,
                Outcome::Acked => std::mem::take(&mut extra_retry),
                Outcome::Failed => false,
            };
            if !again {
                break;
            }
        }
        self.history.notices.push(notice);
    }

    /// An appointment: booked, maybe notified once or twice, maybe cancelled (and notified
    /// of the cancellation).
    async fn appointment(&mut self) {
        let user = SCHEDULE_USERS + self.w * 1_000 + self.rng.random_range(0..10);
        let token = self.token();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64;
        // Days ahead: no reminder (CPAR_REMINDER_LEAD is an hour) adds notices of its own.
        let inicio = now + self.rng.random_range(2 * 86_400..30 * 86_400i64);
        let mut client = self.clients.cpar.clone();
        let (create, answer) = self
            .call(client.create_schedule(CreateScheduleRequest {
                id_usuario: user.to_string(),
                titulo: format!("Sessão {token}"),
                inicio: Some(prost_types::Timestamp {
                    seconds: inicio,
                    nanos: 0,
                }),
                duracao_minutos: 30,
            }))
            .await;
        let id = answer.and_then(|s| s.id_agendamento.parse::<i64>().ok());
        let mut a = Appointment {
            user,
            token,
            create,
            id,
            notifies: Vec::new(),
            cancel: None,
        };
        if let Some(id) = id {
            for _ in 0..self.rng.random_range(0..=2) {
                let o = self.notify(id).await;
                a.notifies.push(o);
            }
            if self.rng.random_bool(0.3) {
                let mut client = self.clients.cpar.clone();
                let (o, _) = self
                    .call(client.cancel_schedule(CancelScheduleRequest {
                        id_agendamento: id.to_string(),
                    }))
                    .await;
                a.cancel = Some(o);
                if self.rng.random_bool(0.5) {
                    let o = self.notify(id).await;
                    a.notifies.push(o);
                }
            }
        }
        self.history.appointments.push(a);
    }

    async fn notify(&mut self, id: i64) -> Outcome {
        let mut client = self.clients.cpar.clone();
        self.call(client.notify_schedule(NotifyScheduleRequest {
            id_agendamento: id.to_string(),
            ..Default::default()
        }))
        .await
        .0
    }

    async fn media(&mut self) {
        let course = MEDIA_COURSES + self.w * 10 + self.rng.random_range(0..3);
        let token = self.token();
        let tipo = ["video", "slides", "texto"][self.rng.random_range(0..3)];
        let duracao_segundos = self.rng.random_range(0..3600);
        let mut client = self.clients.midia.clone();
        let (outcome, answer) = self
            .call(client.add_media(AddMediaRequest {
                id_curso: course.to_string(),
                titulo: format!("Material {token}"),
                tipo: tipo.into(),
                url: format!("https://midia.aula.dev/faults/{course}/{}.mp4", self.n),
                duracao_segundos,
                ordem: 0,
                descricao: "Material do teste de falhas".into(),
            }))
            .await;
        self.history.media.push(Media {
            course,
            token,
            outcome,
            id: answer.map(|m| m.id),
        });
    }

    async fn interaction(&mut self) {
        let course = INSIGHT_COURSES + self.w;
        let id = format!("faults-{}-w{}-n{}", self.plan.seed, self.w, self.n);
        let latencia_ms = self.rng.random_range(1..2000);
        let mut client = self.clients.insights.clone();
        let (outcome, _) = self
            .call(client.record_interaction(RecordInteractionRequest {
                id_interacao: id.clone(),
                id_curso: course.to_string(),
                id_usuario: (QUESTION_USERS + self.w).to_string(),
                latencia_ms,
                modelo: "faults".into(),
                sucesso: true,
            }))
            .await;
        self.history.interactions.push(Interaction {
            course,
            id,
            outcome,
        });
    }

    /// A question through cursos: cursos asks midia and the chatbot, which records the
    /// interaction in insights in the background.
    async fn question(&mut self) {
        let (course, _) = self.plan.courses[self.rng.random_range(0..self.plan.courses.len())];
        let token = self.token();
        let mut client = self.clients.cursos.clone();
        let (outcome, answer) = self
            .call(client.ask_question(AskQuestionRequest {
                id_curso: course.to_string(),
                aula_contexto: "Aula de revisão".into(),
                duvida: format!("Qual é o tema principal desta aula? {token}"),
                id_usuario: (QUESTION_USERS + self.w).to_string(),
            }))
            .await;
        self.history.questions.push(Question {
            course,
            outcome,
            id_interacao: answer.map(|a| a.id_interacao).filter(|id| !id.is_empty()),
        });
    }
}
