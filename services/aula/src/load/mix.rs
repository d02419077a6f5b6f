//! The mix: which RPCs `aula load` calls and how often.
//!
//! Proportions are exact rather than sampled: the weights are laid out once as a smooth
//! weighted round-robin sequence (nginx's algorithm) and every request takes the next slot of
//! one shared counter. Any run of `total weight` consecutive requests therefore calls each RPC
//! exactly its weight's number of times, spread out rather than in bursts, so even a short run
//! exercises the rare RPCs.
//!
//! The default mix is gRPC, unary and streaming; `--gateway` adds the REST gateway's routes
//! (HTTP, each one gRPC call behind it), which `--only gateway` (or a route's path) picks alone.

use aula_runtime::{
    auth::{Rule, RULES},
    spec,
};
use std::fmt;

/// The service an RPC is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Cursos,
    Chatbot,
    Cpar,
    Notificacoes,
    Insights,
    Midia,
    /// The REST gateway (HTTP).
    Gateway,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Cursos => "cursos",
            Target::Chatbot => "chatbot",
            Target::Cpar => "cpar",
            Target::Notificacoes => "notificacoes",
            Target::Insights => "insights",
            Target::Midia => "midia",
            Target::Gateway => "gateway",
        }
    }
}

/// One RPC of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rpc {
    ListCourses,
    GetCourse,
    GetUserCourses,
    Enroll,
    Unenroll,
    GetCourseMedia,
    GetMedia,
    AskQuestion,
    SendNotification,
    ListNotifications,
    CreateSchedule,
    ListSchedules,
    NotifySchedule,
    GetStatus(Target),
    /// Streaming: subscribe as a user, send that user a notification, wait for it on the stream
    /// (the latency is the delivery's, subscription included).
    SubscribeNotifications,
    /// Streaming: a question answered in chunks, read to the end.
    ResolveDuvidaStream,
    /// A route of the REST gateway.
    Http(Route),
}

/// The gateway routes `aula load --gateway` drives: the seed's reads and a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Route {
    /// `GET /cursos` (CursosService/GetStatus).
    CursosStatus,
    /// `GET /cursos/ver_inscricoes_do_usuario/{id}` (GetUserCourses).
    UserCourses,
    /// `GET /cursos/consumir_midia_curso/{id}` (GetCourseMedia, cursos -> midia).
    CourseMedia,
    /// `GET /midia_conteudo/{id}` (GetMedia).
    Media,
    /// `POST /chatbot/duvida` (ResolveDuvida).
    Question,
}

impl Route {
    /// The service and RPC the gateway calls for the route.
    pub fn backend(self) -> (Target, &'static str) {
        match self {
            Route::CursosStatus => (Target::Cursos, "GetStatus"),
            Route::UserCourses => (Target::Cursos, "GetUserCourses"),
            Route::CourseMedia => (Target::Cursos, "GetCourseMedia"),
            Route::Media => (Target::Midia, "GetMedia"),
            Route::Question => (Target::Chatbot, "ResolveDuvida"),
        }
    }

    /// The route as the gateway's README lists it: its `--only` name and report label.
    pub fn label(self) -> &'static str {
        match self {
            Route::CursosStatus => "GET /cursos",
            Route::UserCourses => "GET /cursos/ver_inscricoes_do_usuario/{id}",
            Route::CourseMedia => "GET /cursos/consumir_midia_curso/{id}",
            Route::Media => "GET /midia_conteudo/{id}",
            Route::Question => "POST /chatbot/duvida",
        }
    }
}

impl Rpc {
    /// The service that receives the call.
    pub fn target(self) -> Target {
        match self {
            Rpc::ListCourses
            | Rpc::GetCourse
            | Rpc::GetUserCourses
            | Rpc::Enroll
            | Rpc::Unenroll
            | Rpc::GetCourseMedia
            | Rpc::AskQuestion
            | Rpc::SendNotification => Target::Cursos,
            Rpc::GetMedia => Target::Midia,
            Rpc::ListNotifications | Rpc::SubscribeNotifications => Target::Notificacoes,
            Rpc::ResolveDuvidaStream => Target::Chatbot,
            Rpc::Http(_) => Target::Gateway,
            Rpc::CreateSchedule | Rpc::ListSchedules | Rpc::NotifySchedule => Target::Cpar,
            Rpc::GetStatus(t) => t,
        }
    }

    /// Whether the call acts on a load user's data (users 1000..1999, or schedule 1 of a demo
    /// user), so that with end-user auth on only a staff token may send it: its rule in
    /// docs/AUTH.md's table ([`RULES`]) asks for more than an authenticated user. A route
    /// has the rule of the RPC behind it.
    pub fn acts_on_users(self) -> bool {
        let (target, method) = match self {
            Rpc::Http(route) => route.backend(),
            _ => (self.target(), self.method()),
        };
        let service = spec::by_name(target.name()).map(|s| s.grpc_service);
        RULES.iter().any(|&(s, m, rule)| {
            Some(s) == service && m == method && !matches!(rule, Rule::Public | Rule::Authenticated)
        })
    }

    /// The gRPC method name, as `--only` accepts it.
    pub fn method(self) -> &'static str {
        match self {
            Rpc::ListCourses => "ListCourses",
            Rpc::GetCourse => "GetCourse",
            Rpc::GetUserCourses => "GetUserCourses",
            Rpc::Enroll => "Enroll",
            Rpc::Unenroll => "Unenroll",
            Rpc::GetCourseMedia => "GetCourseMedia",
            Rpc::GetMedia => "GetMedia",
            Rpc::AskQuestion => "AskQuestion",
            Rpc::SendNotification => "SendNotification",
            Rpc::ListNotifications => "ListNotifications",
            Rpc::CreateSchedule => "CreateSchedule",
            Rpc::ListSchedules => "ListSchedules",
            Rpc::NotifySchedule => "NotifySchedule",
            Rpc::GetStatus(_) => "GetStatus",
            Rpc::SubscribeNotifications => "SubscribeNotifications",
            Rpc::ResolveDuvidaStream => "ResolveDuvidaStream",
            Rpc::Http(route) => route.label(),
        }
    }

    /// Whether `--only` names this RPC: by method (`GetStatus` is all six) or by
    /// `service.Method` (`cursos.GetStatus`); a gateway route by its path (`GET /cursos`) or
    /// all of them by `gateway`. Case is ignored.
    pub fn matches(self, name: &str) -> bool {
        let name = name.trim();
        name.eq_ignore_ascii_case(self.method())
            || name.eq_ignore_ascii_case(&self.to_string())
            || (matches!(self, Rpc::Http(_)) && name.eq_ignore_ascii_case("gateway"))
    }
}

impl fmt::Display for Rpc {
    /// `service.Method` (`gateway GET /cursos` for a route), the label of the reports.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rpc::Http(route) => write!(f, "gateway {}", route.label()),
            _ => write!(f, "{}.{}", self.target().name(), self.method()),
        }
    }
}

/// The default mix: reads dominate, as on a learning platform; writes, questions and schedules
/// are rarer; every service's GetStatus is polled now and then, like a dashboard would.
pub const DEFAULT_WEIGHTS: &[(Rpc, u32)] = &[
    (Rpc::ListCourses, 10),
    (Rpc::GetCourse, 10),
    (Rpc::GetUserCourses, 20),
    (Rpc::Enroll, 4),
    (Rpc::Unenroll, 2),
    (Rpc::GetCourseMedia, 8),
    (Rpc::GetMedia, 6),
    (Rpc::AskQuestion, 3),
    (Rpc::SendNotification, 3),
    (Rpc::ListNotifications, 8),
    (Rpc::CreateSchedule, 2),
    (Rpc::ListSchedules, 5),
    (Rpc::NotifySchedule, 1),
    (Rpc::GetStatus(Target::Cursos), 1),
    (Rpc::GetStatus(Target::Chatbot), 1),
    (Rpc::GetStatus(Target::Cpar), 1),
    (Rpc::GetStatus(Target::Notificacoes), 1),
    (Rpc::GetStatus(Target::Insights), 1),
    (Rpc::GetStatus(Target::Midia), 1),
    (Rpc::SubscribeNotifications, 2),
    (Rpc::ResolveDuvidaStream, 1),
];

/// The gateway's share, added by `--gateway`: what a browser or app on the REST API sends.
pub const GATEWAY_WEIGHTS: &[(Rpc, u32)] = &[
    (Rpc::Http(Route::UserCourses), 6),
    (Rpc::Http(Route::CourseMedia), 3),
    (Rpc::Http(Route::Media), 3),
    (Rpc::Http(Route::CursosStatus), 1),
    (Rpc::Http(Route::Question), 1),
];

/// A weighted mix, laid out as a sequence of slots.
#[derive(Debug, Clone)]
pub struct Mix {
    weights: Vec<(Rpc, u32)>,
    slots: Vec<Rpc>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum MixError {
    /// A name `--only` gave, and the names it could have been.
    Unknown(String, String),
    Empty,
}

impl fmt::Display for MixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MixError::Unknown(name, known) => {
                write!(f, "--only {name:?} names no RPC of the mix; known: {known}")
            }
            MixError::Empty => write!(f, "the mix is empty"),
        }
    }
}

impl std::error::Error for MixError {}

impl Mix {
    /// A mix of the given weights (zero weights are dropped).
    pub fn new(weights: &[(Rpc, u32)]) -> Result<Self, MixError> {
        let weights: Vec<(Rpc, u32)> = weights.iter().copied().filter(|(_, w)| *w > 0).collect();
        if weights.is_empty() {
            return Err(MixError::Empty);
        }
        let total: i64 = weights.iter().map(|(_, w)| i64::from(*w)).sum();
        // Smooth weighted round-robin: each step every entry gains its weight, the richest is
        // picked and pays the total. Over `total` steps each entry is picked `weight` times.
        let mut current = vec![0i64; weights.len()];
        let mut slots = Vec::with_capacity(total as usize);
        for _ in 0..total {
            for (c, (_, w)) in current.iter_mut().zip(&weights) {
                *c += i64::from(*w);
            }
            let best = (0..weights.len())
                .max_by_key(|&i| (current[i], std::cmp::Reverse(i)))
                .expect("not empty");
            current[best] -= total;
            slots.push(weights[best].0);
        }
        Ok(Self { weights, slots })
    }

    /// The default mix (with the gateway's routes when `gateway`), or only the RPCs and
    /// routes `only` names (a route named there needs no `gateway`).
    pub fn restricted(only: &[String], gateway: bool) -> Result<Self, MixError> {
        let all = || DEFAULT_WEIGHTS.iter().chain(GATEWAY_WEIGHTS).copied();
        if only.is_empty() {
            let chosen: Vec<(Rpc, u32)> = all()
                .filter(|(r, _)| gateway || !matches!(r, Rpc::Http(_)))
                .collect();
            return Self::new(&chosen);
        }
        for name in only {
            if !all().any(|(r, _)| r.matches(name)) {
                return Err(MixError::Unknown(name.clone(), known_names()));
            }
        }
        let chosen: Vec<(Rpc, u32)> = all()
            .filter(|(r, _)| only.iter().any(|n| r.matches(n)))
            .collect();
        Self::new(&chosen)
    }

    /// The RPC of the `n`th request.
    pub fn pick(&self, n: u64) -> Rpc {
        self.slots[(n % self.slots.len() as u64) as usize]
    }

    /// The RPCs of the mix with their weights, in declaration order.
    pub fn weights(&self) -> &[(Rpc, u32)] {
        &self.weights
    }

    pub fn rpcs(&self) -> impl Iterator<Item = Rpc> + '_ {
        self.weights.iter().map(|(r, _)| *r)
    }

    /// The sum of the weights: the length of one cycle of the mix.
    pub fn cycle(&self) -> usize {
        self.slots.len()
    }

    /// The services the mix calls.
    pub fn targets(&self) -> Vec<Target> {
        let mut t: Vec<Target> = self.rpcs().map(Rpc::target).collect();
        t.sort();
        t.dedup();
        t
    }
}

fn known_names() -> String {
    let mut names: Vec<&str> = DEFAULT_WEIGHTS.iter().map(|(r, _)| r.method()).collect();
    names.dedup();
    names.push("gateway");
    names.extend(GATEWAY_WEIGHTS.iter().map(|(r, _)| r.method()));
    names.join(", ")
}

/// Splits `--only a,b` (and repeated flags) into names.
pub fn split_names(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn counts(mix: &Mix, from: u64, n: u64) -> HashMap<Rpc, u32> {
        let mut c = HashMap::new();
        for i in from..from + n {
            *c.entry(mix.pick(i)).or_insert(0) += 1;
        }
        c
    }

    #[test]
    fn every_cycle_holds_each_rpc_exactly_its_weight() {
        let mix = Mix::new(DEFAULT_WEIGHTS).unwrap();
        let total: u32 = DEFAULT_WEIGHTS.iter().map(|(_, w)| w).sum();
        assert_eq!(mix.cycle(), total as usize);
        // Any window of one cycle, not only the first: the sequence repeats.
        for start in [0, 7, 1000] {
            let c = counts(&mix, start, total.into());
            for (rpc, w) in DEFAULT_WEIGHTS {
                assert_eq!(c[rpc], *w, "{rpc} from {start}");
            }
        }
    }

    /// Each RPC of the mix (a route: the RPC behind it) has a rule in docs/AUTH.md's table, and
    /// the ones naming a load user or a schedule are those only staff may send for anyone.
    #[test]
    fn the_rpcs_acting_on_users_follow_the_auth_table() {
        for (rpc, _) in DEFAULT_WEIGHTS.iter().chain(GATEWAY_WEIGHTS) {
            let (target, method) = match rpc {
                Rpc::Http(route) => route.backend(),
                _ => (rpc.target(), rpc.method()),
            };
            let service = spec::by_name(target.name()).unwrap().grpc_service;
            assert!(
                RULES.iter().any(|&(s, m, _)| s == service && m == method),
                "{rpc}: {service}/{method} is not in the auth table"
            );
        }
        let acting: Vec<String> = DEFAULT_WEIGHTS
            .iter()
            .chain(GATEWAY_WEIGHTS)
            .filter(|(r, _)| r.acts_on_users())
            .map(|(r, _)| r.to_string())
            .collect();
        assert_eq!(
            acting,
            [
                "cursos.GetUserCourses",
                "cursos.Enroll",
                "cursos.Unenroll",
                "cursos.AskQuestion",
                "cursos.SendNotification",
                "notificacoes.ListNotifications",
                "cpar.CreateSchedule",
                "cpar.ListSchedules",
                "cpar.NotifySchedule",
                "notificacoes.SubscribeNotifications",
                "chatbot.ResolveDuvidaStream",
                "gateway GET /cursos/ver_inscricoes_do_usuario/{id}",
                "gateway POST /chatbot/duvida",
            ]
        );
    }

    #[test]
    fn heavy_rpcs_are_spread_out_not_bunched() {
        let mix = Mix::new(&[(Rpc::GetUserCourses, 3), (Rpc::Enroll, 1)]).unwrap();
        let seq: Vec<Rpc> = (0..4).map(|i| mix.pick(i)).collect();
        assert_eq!(
            seq,
            [
                Rpc::GetUserCourses,
                Rpc::GetUserCourses,
                Rpc::Enroll,
                Rpc::GetUserCourses
            ]
        );
        // The longest run of the heaviest RPC in the default mix stays short.
        let mix = Mix::new(DEFAULT_WEIGHTS).unwrap();
        let mut run = 0;
        let mut longest = 0;
        for i in 0..mix.cycle() as u64 * 2 {
            run = if mix.pick(i) == Rpc::GetUserCourses {
                run + 1
            } else {
                0
            };
            longest = longest.max(run);
        }
        assert!(longest <= 2, "GetUserCourses ran {longest} times in a row");
    }

    #[test]
    fn only_restricts_by_method_or_qualified_name() {
        let mix = Mix::restricted(&["GetUserCourses".into()], false).unwrap();
        assert_eq!(mix.rpcs().collect::<Vec<_>>(), [Rpc::GetUserCourses]);
        assert!((0..10).all(|i| mix.pick(i) == Rpc::GetUserCourses));

        let all_status = Mix::restricted(&["getstatus".into()], false).unwrap();
        assert_eq!(all_status.rpcs().count(), 6);
        assert_eq!(all_status.targets().len(), 6);

        let one = Mix::restricted(
            &split_names(&["cursos.GetStatus, AskQuestion".into()]),
            false,
        )
        .unwrap();
        assert_eq!(
            one.rpcs().collect::<Vec<_>>(),
            [Rpc::AskQuestion, Rpc::GetStatus(Target::Cursos)]
        );
        assert_eq!(one.targets(), [Target::Cursos]);
    }

    #[test]
    fn unknown_names_are_refused_with_the_known_ones() {
        let err = Mix::restricted(&["GetUserCoures".into()], false).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("GetUserCoures") && msg.contains("GetUserCourses"),
            "{msg}"
        );
        assert_eq!(Mix::new(&[(Rpc::Enroll, 0)]).unwrap_err(), MixError::Empty);
    }

    #[test]
    fn the_gateway_joins_with_its_flag_or_by_name() {
        let grpc_only = Mix::restricted(&[], false).unwrap();
        assert!(!grpc_only.targets().contains(&Target::Gateway));
        // The streaming RPCs are in the default mix.
        assert!(grpc_only.rpcs().any(|r| r == Rpc::SubscribeNotifications));
        assert!(grpc_only.rpcs().any(|r| r == Rpc::ResolveDuvidaStream));

        let with = Mix::restricted(&[], true).unwrap();
        let routes = with.rpcs().filter(|r| matches!(r, Rpc::Http(_))).count();
        assert_eq!(routes, GATEWAY_WEIGHTS.len());
        assert_eq!(with.cycle(), grpc_only.cycle() + 14);

        let gw = Mix::restricted(&["gateway".into()], false).unwrap();
        assert_eq!(gw.targets(), [Target::Gateway]);
        assert_eq!(gw.rpcs().count(), GATEWAY_WEIGHTS.len());
        let one = Mix::restricted(&["get /cursos".into()], false).unwrap();
        assert_eq!(
            one.rpcs().collect::<Vec<_>>(),
            [Rpc::Http(Route::CursosStatus)]
        );
        assert_eq!(
            Rpc::Http(Route::UserCourses).to_string(),
            "gateway GET /cursos/ver_inscricoes_do_usuario/{id}"
        );
        let err = Mix::restricted(&["GET /nada".into()], false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("gateway") && err.contains("POST /chatbot/duvida"),
            "{err}"
        );
    }

    #[test]
    fn labels_name_the_service() {
        assert_eq!(Rpc::GetStatus(Target::Midia).to_string(), "midia.GetStatus");
        assert_eq!(Rpc::GetMedia.to_string(), "midia.GetMedia");
        assert_eq!(Rpc::NotifySchedule.to_string(), "cpar.NotifySchedule");
        assert_eq!(
            split_names(&["a, b".into(), "c".into(), ",".into()]),
            ["a", "b", "c"]
        );
    }
}
