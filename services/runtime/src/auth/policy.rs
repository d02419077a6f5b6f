//! Who may call what: one table, [`RULES`], for every RPC of every service. [`super::AuthLayer`]
//! enforces the rule's role part before the handler runs; for [`Rule::OwnUser`] and
//! [`Rule::OwnObject`] the handler checks the user the request acts on with
//! [`super::own_user`] / [`super::may_act_on`] (only it has the decoded message or the stored
//! object). docs/AUTH.md is this table, rendered by [`markdown`] and tested equal to it.

use crate::spec::{CHATBOT, CPAR, CURSOS, INSIGHTS, MIDIA, NOTIFICACOES};

/// What an RPC requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No token: health checks and reflection (schemas only).
    Public,
    /// Any authenticated user, or another service.
    Authenticated,
    /// A user acting on their own `id_usuario` (empty means theirs), staff on anyone's, or
    /// another service. The handler checks the request's `id_usuario`.
    OwnUser,
    /// A user acting on an object they own (looked up by its id: a schedule), staff on
    /// anyone's, or another service. The handler checks the stored owner.
    OwnObject,
    /// Staff only (`AULA_STAFF_ROLE`), or another service.
    Staff,
}

impl Rule {
    /// Who may call, in words (docs/AUTH.md and denial messages).
    pub fn describe(self) -> &'static str {
        match self {
            Rule::Public => "anyone, no token",
            Rule::Authenticated => "any authenticated user; services",
            Rule::OwnUser => "the user named by id_usuario (empty: the caller); staff; services",
            Rule::OwnObject => "the owner of the schedule named by id_agendamento; staff; services",
            Rule::Staff => "staff; services",
        }
    }
}

/// Every RPC and its rule: `(service, method, rule)`.
pub const RULES: &[(&str, &str, Rule)] = &[
    // cursos: the catalogue is readable by anyone signed in; enrolments are the user's own.
    (CURSOS.grpc_service, "GetStatus", Rule::Authenticated),
    (CURSOS.grpc_service, "ListCourses", Rule::Authenticated),
    (CURSOS.grpc_service, "GetCourse", Rule::Authenticated),
    (CURSOS.grpc_service, "GetCourseMedia", Rule::Authenticated),
    (CURSOS.grpc_service, "GetUserCourses", Rule::OwnUser),
    (CURSOS.grpc_service, "Enroll", Rule::OwnUser),
    (CURSOS.grpc_service, "Unenroll", Rule::OwnUser),
    (CURSOS.grpc_service, "AskQuestion", Rule::OwnUser),
    (CURSOS.grpc_service, "SendNotification", Rule::OwnUser),
    // chatbot: a question is asked by the user it is recorded for.
    (CHATBOT.grpc_service, "GetStatus", Rule::Authenticated),
    (CHATBOT.grpc_service, "ResolveDuvida", Rule::OwnUser),
    (CHATBOT.grpc_service, "ResolveDuvidaStream", Rule::OwnUser),
    (CHATBOT.grpc_service, "RegisterMetrics", Rule::Authenticated),
    // cpar: schedules belong to a user.
    (CPAR.grpc_service, "GetStatus", Rule::Authenticated),
    (CPAR.grpc_service, "CreateSchedule", Rule::OwnUser),
    (CPAR.grpc_service, "ListSchedules", Rule::OwnUser),
    (CPAR.grpc_service, "GetSchedule", Rule::OwnObject),
    (CPAR.grpc_service, "CancelSchedule", Rule::OwnObject),
    (CPAR.grpc_service, "NotifySchedule", Rule::OwnObject),
    // notificacoes: a user reads and marks their own; cursos and cpar deliver to anyone's.
    (NOTIFICACOES.grpc_service, "GetStatus", Rule::Authenticated),
    (NOTIFICACOES.grpc_service, "SendNotification", Rule::OwnUser),
    (NOTIFICACOES.grpc_service, "NotifySchedule", Rule::OwnUser),
    (
        NOTIFICACOES.grpc_service,
        "ListNotifications",
        Rule::OwnUser,
    ),
    (NOTIFICACOES.grpc_service, "MarkAsRead", Rule::OwnUser),
    (
        NOTIFICACOES.grpc_service,
        "SubscribeNotifications",
        Rule::OwnUser,
    ),
    // insights: reading a course's insights is staff's; the chatbot records interactions.
    (INSIGHTS.grpc_service, "GetStatus", Rule::Authenticated),
    (
        INSIGHTS.grpc_service,
        "RegisterMetrics",
        Rule::Authenticated,
    ),
    (INSIGHTS.grpc_service, "RecordInteraction", Rule::OwnUser),
    (INSIGHTS.grpc_service, "GetCourseInsights", Rule::Staff),
    // midia: anyone signed in reads a course's media; adding it (it grounds the chatbot's
    // answers) is staff's.
    (MIDIA.grpc_service, "GetStatus", Rule::Authenticated),
    (MIDIA.grpc_service, "GetMedia", Rule::Authenticated),
    (MIDIA.grpc_service, "AddMedia", Rule::Staff),
    // Every server's health and reflection.
    ("grpc.health.v1.Health", "Check", Rule::Public),
    ("grpc.health.v1.Health", "Watch", Rule::Public),
    (
        "grpc.reflection.v1.ServerReflection",
        "ServerReflectionInfo",
        Rule::Public,
    ),
    (
        "grpc.reflection.v1alpha.ServerReflection",
        "ServerReflectionInfo",
        Rule::Public,
    ),
];

/// The rule of a gRPC path (`/services.CursosService/Enroll`); `None` for a method the table
/// does not list, which is refused.
pub fn rule_for(path: &str) -> Option<Rule> {
    let (service, method) = path.trim_start_matches('/').split_once('/')?;
    RULES
        .iter()
        .find(|(s, m, _)| *s == service && *m == method)
        .map(|(_, _, r)| *r)
}

/// The gRPC half of docs/AUTH.md.
pub fn markdown() -> String {
    let mut out = String::from("| RPC | Who may call it |\n|---|---|\n");
    for (service, method, rule) in RULES {
        let short = service.trim_start_matches("services.");
        out.push_str(&format!("| `{short}/{method}` | {} |\n", rule.describe()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_of_every_service_has_exactly_one_rule() {
        let services: Vec<&str> = crate::spec::ALL.iter().map(|s| s.grpc_service).collect();
        let methods = crate::observe::known_methods(&services);
        for (path, _) in &methods {
            assert!(
                rule_for(path).is_some(),
                "{path} has no rule in auth::policy::RULES"
            );
        }
        for (s, m, _) in RULES {
            let path = format!("/{s}/{m}");
            assert!(
                methods.iter().any(|(p, _)| *p == path),
                "{path} is in RULES but no service has it"
            );
            assert_eq!(
                RULES
                    .iter()
                    .filter(|(s2, m2, _)| s2 == s && m2 == m)
                    .count(),
                1,
                "{path} is listed twice"
            );
        }
        assert_eq!(rule_for("/services.CursosService/Nope"), None);
        assert_eq!(rule_for("garbage"), None);
    }
}
