//! The six service definitions, by name.

use aula_runtime::ServiceDef;

/// Every service, in port order.
pub fn all() -> [ServiceDef; 6] {
    [
        cursos::service(),
        chatbot::service(),
        cpar::service(),
        notificacoes::service(),
        insights::service(),
        midia::service(),
    ]
}

pub const NAMES: [&str; 7] = [
    "cursos",
    "chatbot",
    "cpar",
    "notificacoes",
    "insights",
    "midia",
    "gateway",
];

pub fn by_name(name: &str) -> Option<ServiceDef> {
    all().into_iter().find(|d| d.spec.name == name)
}
