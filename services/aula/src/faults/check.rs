//! The verdict: the history set against what the final read found, per kind of write.
//!
//! Counts, per kind:
//! - `acked`: calls the service acknowledged; each must be `present` (its effect is in the
//!   final read, or was undone by a later acknowledged call of the same writer) or is `lost`.
//! - `duplicated`: writes whose effect appears more than once (a notification stored twice,
//!   an appointment booked twice, a retried keyed send that was not deduplicated).
//! - `indeterminate`: the call timed out or broke; `indet_present` says how many took effect
//!   anyway. Either is correct; twice is a duplicate.
//! - `failed`: definite refusals; `failed_present` counts those that took effect anyway (a
//!   service that said "no" and wrote it: a client would retry and write twice).
//!
//! The run fails on any `lost`, `duplicated` or `failed_present` in a strict kind. The
//! chatbot's interaction records are best effort by design (a bounded in-memory queue, a few
//! retries: services/chatbot/README.md), so their losses are shown but do not fail the run.

use super::history::{History, NoticeVia, Outcome};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A schedule as the final read found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenSchedule {
    pub id: i64,
    pub titulo: String,
    pub estado: String,
}

/// Everything the final read found, through the public API.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// user -> the course ids `GetUserCourses` lists.
    pub enrolments: HashMap<i64, BTreeSet<i64>>,
    /// user -> (id, message) of every notification `ListNotifications` pages through.
    pub notifications: HashMap<i64, Vec<(String, String)>>,
    /// user -> every appointment `ListSchedules` pages through.
    pub schedules: HashMap<i64, Vec<SeenSchedule>>,
    /// course -> (id, title) of every item `GetMedia` lists.
    pub media: HashMap<i64, Vec<(i64, String)>>,
    /// interaction id -> whether insights already had it (a repeated `RecordInteraction`
    /// answers `registrada = false`).
    pub interactions: HashMap<String, bool>,
    /// course id -> name, for the enrolment notices ("Inscrição confirmada no curso <nome>").
    pub course_names: HashMap<i64, String>,
}

/// One kind of write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Kind {
    Enroll,
    Unenroll,
    EnrolmentNotice,
    CursosNotification,
    CursosNotificationKeyed,
    DirectNotification,
    DirectNotificationKeyed,
    CreateSchedule,
    CancelSchedule,
    NotifySchedule,
    AddMedia,
    RecordInteraction,
    QuestionRecord,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::Enroll,
        Kind::Unenroll,
        Kind::EnrolmentNotice,
        Kind::CursosNotification,
        Kind::CursosNotificationKeyed,
        Kind::DirectNotification,
        Kind::DirectNotificationKeyed,
        Kind::CreateSchedule,
        Kind::CancelSchedule,
        Kind::NotifySchedule,
        Kind::AddMedia,
        Kind::RecordInteraction,
        Kind::QuestionRecord,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Enroll => "cursos.Enroll",
            Kind::Unenroll => "cursos.Unenroll",
            Kind::EnrolmentNotice => "enrolment notice (outbox)",
            Kind::CursosNotification => "cursos.SendNotification (outbox)",
            Kind::CursosNotificationKeyed => "cursos.SendNotification+key",
            Kind::DirectNotification => "notificacoes.SendNotification",
            Kind::DirectNotificationKeyed => "notificacoes.SendNotification+key",
            Kind::CreateSchedule => "cpar.CreateSchedule",
            Kind::CancelSchedule => "cpar.CancelSchedule",
            Kind::NotifySchedule => "cpar.NotifySchedule (outbox)",
            Kind::AddMedia => "midia.AddMedia",
            Kind::RecordInteraction => "insights.RecordInteraction",
            Kind::QuestionRecord => "insights record of an AskQuestion",
        }
    }

    /// Whether a loss here fails the run (see the module doc).
    pub fn strict(self) -> bool {
        self != Kind::QuestionRecord
    }
}

/// The counts of one kind. `writes` = `acked` + `failed` + `indeterminate`: a keyed send
/// retried three times is one write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub writes: u64,
    pub acked: u64,
    pub failed: u64,
    pub indeterminate: u64,
    pub present: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub indet_present: u64,
    pub failed_present: u64,
}

impl Tally {
    /// One write whose effect was seen `seen` times (0, 1, or more: a duplicate).
    /// Counts one write; returns what is wrong with it, if anything.
    fn write(&mut self, outcome: Outcome, seen: usize) -> Option<String> {
        self.writes += 1;
        match outcome {
            Outcome::Acked => {
                self.acked += 1;
                if seen == 0 {
                    self.lost += 1;
                } else {
                    self.present += 1;
                }
            }
            Outcome::Indeterminate => {
                self.indeterminate += 1;
                if seen > 0 {
                    self.indet_present += 1;
                }
            }
            Outcome::Failed => {
                self.failed += 1;
                if seen > 0 {
                    self.failed_present += 1;
                }
            }
        }
        if seen > 1 {
            self.duplicated += 1;
        }
        match (outcome, seen) {
            (Outcome::Acked, 0) => Some("acknowledged, not found".into()),
            (Outcome::Failed, 1..) => Some(format!("failed, yet found {seen} time(s)")),
            (_, 2..) => Some(format!("{outcome:?}, found {seen} times")),
            _ => None,
        }
    }

    /// What fails the run.
    pub fn violations(&self) -> u64 {
        self.lost + self.duplicated + self.failed_present
    }

    fn add(&mut self, o: &Tally) {
        self.writes += o.writes;
        self.acked += o.acked;
        self.failed += o.failed;
        self.indeterminate += o.indeterminate;
        self.present += o.present;
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.indet_present += o.indet_present;
        self.failed_present += o.failed_present;
    }
}

/// The counts of every kind.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verdict {
    pub kinds: BTreeMap<Kind, Tally>,
    /// One line per lost, duplicated or failed-but-present write, naming it.
    pub anomalies: Vec<String>,
    /// The same for the best-effort kinds (reported, not failing the run).
    pub best_effort_losses: Vec<String>,
}

impl Verdict {
    fn tally_mut(&mut self, kind: Kind) -> &mut Tally {
        self.kinds.entry(kind).or_default()
    }

    /// Counts one write of `kind`; a wrong one is described by `what`.
    fn write(&mut self, kind: Kind, outcome: Outcome, seen: usize, what: impl FnOnce() -> String) {
        if let Some(problem) = self.tally_mut(kind).write(outcome, seen) {
            let line = format!("{}: {}: {problem}", kind.label(), what());
            if kind.strict() {
                self.anomalies.push(line);
            } else {
                self.best_effort_losses.push(line);
            }
        }
    }

    #[cfg(test)]
    pub fn tally(&self, kind: Kind) -> Tally {
        self.kinds.get(&kind).copied().unwrap_or_default()
    }

    /// Lost, duplicated and failed-but-present writes of the strict kinds.
    pub fn violations(&self) -> u64 {
        self.kinds
            .iter()
            .filter(|(k, _)| k.strict())
            .map(|(_, t)| t.violations())
            .sum()
    }

    pub fn total(&self, strict: bool) -> Tally {
        let mut all = Tally::default();
        for (_, t) in self.kinds.iter().filter(|(k, _)| k.strict() == strict) {
            all.add(t);
        }
        all
    }
}

/// Sets the history against the final read.
pub fn verdict(history: &History, seen: &Observed) -> Verdict {
    let mut v = Verdict::default();
    let no_notifications = Vec::new();
    let notifications = |user: i64| seen.notifications.get(&user).unwrap_or(&no_notifications);

    for e in &history.enrolments {
        let enrolled = seen
            .enrolments
            .get(&e.user)
            .is_some_and(|c| c.contains(&e.course));
        match e.unenroll {
            // Only an acknowledged Enroll is followed by an Unenroll: the pair's final state
            // is the Unenroll's to decide; the Enroll counts as present (its effect was
            // superseded by the same writer).
            Some(un) => {
                v.write(Kind::Enroll, e.enroll, 1, String::new);
                v.write(Kind::Unenroll, un, usize::from(!enrolled), || {
                    format!("user {} still enrolled in course {}", e.user, e.course)
                });
            }
            None => v.write(Kind::Enroll, e.enroll, usize::from(enrolled), || {
                format!("user {} in course {}", e.user, e.course)
            }),
        }
        // The notice a new enrolment enqueues in the same transaction: exactly once.
        if let Some(name) = seen.course_names.get(&e.course) {
            let text = format!("Inscrição confirmada no curso {name}");
            let count = notifications(e.user)
                .iter()
                .filter(|(_, m)| *m == text)
                .count();
            let outcome = match (e.enroll, e.nova) {
                (Outcome::Acked, Some(true)) => Some(Outcome::Acked),
                // Already enrolled: this call enqueued nothing; an earlier one may have.
                (Outcome::Acked, _) => Some(Outcome::Indeterminate),
                (Outcome::Indeterminate, _) => Some(Outcome::Indeterminate),
                (Outcome::Failed, _) => Some(Outcome::Failed),
            };
            if let Some(outcome) = outcome {
                v.write(Kind::EnrolmentNotice, outcome, count, || {
                    format!("user {}: {text:?}", e.user)
                });
            }
        }
    }

    for n in &history.notices {
        let kind = match (n.via, n.keyed) {
            (NoticeVia::Cursos, false) => Kind::CursosNotification,
            (NoticeVia::Cursos, true) => Kind::CursosNotificationKeyed,
            (NoticeVia::Notificacoes, false) => Kind::DirectNotification,
            (NoticeVia::Notificacoes, true) => Kind::DirectNotificationKeyed,
        };
        let matches: Vec<&String> = notifications(n.user)
            .iter()
            .filter(|(_, m)| m.contains(&n.token))
            .map(|(id, _)| id)
            .collect();
        let mut count = matches.len();
        // An acknowledged id that does not exist is lost, whatever else carries the text.
        if let Some(id) = &n.id {
            if !matches.contains(&id) {
                count = 0;
            }
        }
        v.write(kind, n.outcome(), count, || {
            format!(
                "user {} {} (id {:?}, attempts {:?})",
                n.user, n.token, n.id, n.attempts
            )
        });
    }

    for a in &history.appointments {
        let mine: Vec<&SeenSchedule> = seen
            .schedules
            .get(&a.user)
            .into_iter()
            .flatten()
            .filter(|s| s.titulo.contains(&a.token))
            .collect();
        let by_id =
            a.id.and_then(|id| mine.iter().find(|s| s.id == id).copied());
        let count = match a.id {
            Some(_) if by_id.is_none() => 0,
            _ => mine.len(),
        };
        let what = || format!("user {} {} (id {:?})", a.user, a.token, a.id);
        v.write(Kind::CreateSchedule, a.create, count, what);
        if let Some(cancel) = a.cancel {
            let cancelled = by_id
                .or(mine.first().copied())
                .is_some_and(|s| s.estado == "cancelado");
            v.write(Kind::CancelSchedule, cancel, usize::from(cancelled), what);
        }
        // Each NotifySchedule enqueues one notice ("Agendamento confirmado/cancelado: "<title>"
        // ..."); reminders ("Lembrete: ...") are not counted.
        let notices = notifications(a.user)
            .iter()
            .filter(|(_, m)| m.starts_with("Agendamento") && m.contains(&a.token))
            .count() as u64;
        let count = |o: Outcome| a.notifies.iter().filter(|&&x| x == o).count() as u64;
        let (acked, indet, failed) = (
            count(Outcome::Acked),
            count(Outcome::Indeterminate),
            count(Outcome::Failed),
        );
        let tally = v.tally_mut(Kind::NotifySchedule);
        tally.writes += a.notifies.len() as u64;
        tally.acked += acked;
        tally.indeterminate += indet;
        tally.failed += failed;
        tally.present += notices.min(acked);
        tally.lost += acked.saturating_sub(notices);
        tally.indet_present += notices.saturating_sub(acked).min(indet);
        // More notices than calls that may have enqueued one: a failed call enqueued one
        // after all, or some call's notice was delivered twice.
        let extra = notices.saturating_sub(acked + indet);
        tally.failed_present += extra.min(failed);
        tally.duplicated += extra - extra.min(failed);
        if acked > notices || extra > 0 {
            v.anomalies.push(format!(
                "{}: {}: calls {:?}, {notices} notice(s) found",
                Kind::NotifySchedule.label(),
                what(),
                a.notifies
            ));
        }
    }

    for m in &history.media {
        let matches: Vec<i64> = seen
            .media
            .get(&m.course)
            .into_iter()
            .flatten()
            .filter(|(_, title)| title.contains(&m.token))
            .map(|(id, _)| *id)
            .collect();
        let count = match m.id {
            Some(id) if !matches.contains(&id) => 0,
            _ => matches.len(),
        };
        v.write(Kind::AddMedia, m.outcome, count, || {
            format!("course {} {} (id {:?})", m.course, m.token, m.id)
        });
    }

    for i in &history.interactions {
        let present = seen.interactions.get(&i.id).copied().unwrap_or(false);
        v.write(
            Kind::RecordInteraction,
            i.outcome,
            usize::from(present),
            || format!("{} (course {})", i.id, i.course),
        );
    }

    for q in &history.questions {
        let present = q
            .id_interacao
            .as_ref()
            .and_then(|id| seen.interactions.get(id).copied())
            .unwrap_or(false);
        // An answer never given has no id to look for: the record cannot be checked.
        let outcome = match (q.outcome, &q.id_interacao) {
            (Outcome::Acked, Some(_)) => Outcome::Acked,
            (Outcome::Acked, None) | (Outcome::Indeterminate, _) => Outcome::Indeterminate,
            (Outcome::Failed, _) => Outcome::Failed,
        };
        v.write(Kind::QuestionRecord, outcome, usize::from(present), || {
            format!("{:?} (course {})", q.id_interacao, q.course)
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::super::history::*;
    use super::*;

    fn notice(via: NoticeVia, keyed: bool, token: &str, attempts: &[Outcome]) -> Notice {
        Notice {
            via,
            keyed,
            user: 7,
            token: token.into(),
            attempts: attempts.to_vec(),
            id: None,
        }
    }

    fn seen_notifications(msgs: &[&str]) -> Observed {
        let mut seen = Observed::default();
        seen.notifications.insert(
            7,
            msgs.iter()
                .enumerate()
                .map(|(i, m)| (i.to_string(), m.to_string()))
                .collect(),
        );
        seen
    }

    #[test]
    fn a_missing_acknowledged_notification_is_lost_and_a_second_copy_duplicated() {
        use Outcome::*;
        let history = History {
            notices: vec![
                notice(NoticeVia::Cursos, false, "#a#", &[Acked]),
                notice(NoticeVia::Cursos, false, "#b#", &[Acked]),
                notice(NoticeVia::Cursos, true, "#c#", &[Indeterminate, Acked]),
                notice(NoticeVia::Cursos, false, "#d#", &[Indeterminate]),
                notice(NoticeVia::Cursos, false, "#e#", &[Failed]),
            ],
            ..Default::default()
        };
        let seen = seen_notifications(&["x #a#", "x #c#", "again #c#", "x #d#", "x #e#"]);
        let v = verdict(&history, &seen);
        let plain = v.tally(Kind::CursosNotification);
        assert_eq!((plain.acked, plain.present, plain.lost), (2, 1, 1));
        assert_eq!((plain.indeterminate, plain.indet_present), (1, 1));
        assert_eq!((plain.failed, plain.failed_present), (1, 1));
        let keyed = v.tally(Kind::CursosNotificationKeyed);
        assert_eq!(
            (keyed.writes, keyed.acked, keyed.present, keyed.duplicated),
            (1, 1, 1, 1)
        );
        assert_eq!(v.violations(), 3);
    }

    #[test]
    fn an_acknowledged_id_must_exist_itself() {
        let mut n = notice(NoticeVia::Notificacoes, false, "#a#", &[Outcome::Acked]);
        n.id = Some("99".into());
        let history = History {
            notices: vec![n],
            ..Default::default()
        };
        let v = verdict(&history, &seen_notifications(&["x #a#"]));
        assert_eq!(v.tally(Kind::DirectNotification).lost, 1);
    }

    #[test]
    fn enrolments_follow_the_last_acknowledged_call() {
        use Outcome::*;
        let e = |user, enroll, unenroll| Enrolment {
            user,
            course: 1,
            enroll,
            nova: (enroll == Acked).then_some(true),
            unenroll,
        };
        let history = History {
            enrolments: vec![
                e(1, Acked, None),                // present
                e(2, Acked, None),                // lost
                e(3, Acked, Some(Acked)),         // unenroll lost (still enrolled)
                e(4, Acked, Some(Acked)),         // unenroll present
                e(5, Indeterminate, None),        // either
                e(6, Acked, Some(Indeterminate)), // either
            ],
            ..Default::default()
        };
        let mut seen = Observed::default();
        for user in [1, 3, 5, 6] {
            seen.enrolments.insert(user, BTreeSet::from([1]));
        }
        seen.course_names.insert(1, "Python".into());
        let text = "Inscrição confirmada no curso Python";
        for user in [1, 2, 3] {
            seen.notifications
                .insert(user, vec![("1".into(), text.into())]);
        }
        seen.notifications.insert(
            4,
            vec![("2".into(), text.into()), ("3".into(), text.into())],
        );
        let v = verdict(&history, &seen);
        let enroll = v.tally(Kind::Enroll);
        assert_eq!((enroll.acked, enroll.present, enroll.lost), (5, 4, 1));
        assert_eq!(enroll.indet_present, 1);
        let un = v.tally(Kind::Unenroll);
        assert_eq!(
            (un.acked, un.present, un.lost, un.indeterminate),
            (2, 1, 1, 1)
        );
        let notice = v.tally(Kind::EnrolmentNotice);
        // User 6's acknowledged enrolment has no notice (lost); user 4's has two.
        assert_eq!((notice.acked, notice.lost, notice.duplicated), (5, 1, 1));
        assert_eq!((notice.indeterminate, notice.indet_present), (1, 0));
    }

    #[test]
    fn schedule_notices_are_counted_per_call() {
        use Outcome::*;
        let history = History {
            appointments: vec![Appointment {
                user: 7,
                token: "#s#".into(),
                create: Acked,
                id: Some(10),
                notifies: vec![Acked, Acked, Indeterminate],
                cancel: Some(Acked),
            }],
            ..Default::default()
        };
        let mut seen = seen_notifications(&[
            "Agendamento confirmado: \"Sessão #s#\" em ...",
            "Lembrete: \"Sessão #s#\" começa em ...",
        ]);
        seen.schedules.insert(
            7,
            vec![SeenSchedule {
                id: 10,
                titulo: "Sessão #s#".into(),
                estado: "agendado".into(),
            }],
        );
        let v = verdict(&history, &seen);
        assert_eq!(v.tally(Kind::CreateSchedule).present, 1);
        assert_eq!(v.tally(Kind::CancelSchedule).lost, 1);
        let n = v.tally(Kind::NotifySchedule);
        assert_eq!((n.writes, n.present, n.lost, n.duplicated), (3, 1, 1, 0));
    }

    #[test]
    fn best_effort_losses_do_not_fail_the_run() {
        let history = History {
            questions: vec![Question {
                course: 1,
                outcome: Outcome::Acked,
                id_interacao: Some("q1".into()),
            }],
            ..Default::default()
        };
        let v = verdict(&history, &Observed::default());
        assert_eq!(v.tally(Kind::QuestionRecord).lost, 1);
        assert_eq!(v.violations(), 0);
    }
}
