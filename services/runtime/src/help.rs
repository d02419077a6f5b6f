//! What a binary's `--help` says about the variables it reads: the rows of docs/CONFIG.md's
//! table (embedded at build time, so the two cannot disagree), only those that apply to it, with
//! its own ports and name filled in.

/// One row of docs/CONFIG.md's "Environment variables" table, markdown as written there.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    /// `` `GEMINI_API_KEY` / `GEMINI_API_KEY_FILE` ``: one or more names in backquotes.
    pub names: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/variables.rs"));

/// Which binary is asking.
#[derive(Debug, Clone, Copy)]
pub struct Binary {
    pub name: &'static str,
    pub port: u16,
    pub metrics_port: u16,
    /// It has storage (reads `DATABASE_URL` and the `AULA_DB_*` settings).
    pub stateful: bool,
    /// The REST gateway (listens with `GATEWAY_LISTEN` rather than `AULA_LISTEN`).
    pub http: bool,
}

impl Variable {
    /// The variable names of the row, without markdown.
    pub fn names(&self) -> Vec<&'static str> {
        self.names
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|n| !n.is_empty())
            .collect()
    }

    /// Whether `binary` reads this variable. A meaning that starts "<name> only" belongs to
    /// that binary; storage settings to services with storage; `AULA_LISTEN` to gRPC services.
    pub fn applies_to(&self, binary: &Binary) -> bool {
        let names = self.names();
        let first = names.first().copied().unwrap_or_default();
        // "chatbot only: ..." or "aula only: ...": one binary's name, one lowercase word.
        let owner = self.meaning.split_once(" only").map(|(o, _)| o);
        if let Some(owner) =
            owner.filter(|o| !o.is_empty() && o.chars().all(|c| c.is_ascii_lowercase()))
        {
            return owner == binary.name;
        }
        let storage = first == "AULA_DATA_DIR"
            || first == "AULA_DEMO_DATA"
            || first.ends_with("DATABASE_URL")
            || first.starts_with("AULA_DB_");
        if storage {
            return binary.stateful;
        }
        !(first == "AULA_LISTEN" && binary.http)
    }
}

/// Markdown to plain text: no backquotes, no emphasis.
fn plain(s: &str) -> String {
    s.replace('`', "").replace("**", "")
}

/// The variables section of `binary`'s `--help`.
pub fn variables(binary: &Binary) -> String {
    let fill = |s: &str| {
        plain(s)
            .replace("<grpc port>", &binary.port.to_string())
            .replace("<metrics port>", &binary.metrics_port.to_string())
            .replace("<name>", binary.name)
    };
    let mut out = String::from("Environment variables (docs/CONFIG.md):\n");
    for v in VARIABLES.iter().filter(|v| v.applies_to(binary)) {
        out.push_str(&format!("  {}\n", plain(v.names)));
        let default = fill(v.default);
        if !default.is_empty() {
            out.push_str(&format!("      default: {default}\n"));
        }
        if !v.meaning.is_empty() {
            out.push_str(&format!("      {}\n", fill(v.meaning)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATBOT: Binary = Binary {
        name: "chatbot",
        port: 50052,
        metrics_port: 9052,
        stateful: false,
        http: false,
    };
    const CURSOS: Binary = Binary {
        name: "cursos",
        port: 50051,
        metrics_port: 9051,
        stateful: true,
        http: false,
    };
    const GATEWAY: Binary = Binary {
        name: "gateway",
        port: 8080,
        metrics_port: 9080,
        stateful: false,
        http: true,
    };

    #[test]
    fn each_binary_lists_what_it_reads() {
        let chatbot = variables(&CHATBOT);
        assert!(chatbot.contains("GEMINI_API_KEY"), "{chatbot}");
        assert!(chatbot.contains("0.0.0.0:50052"), "{chatbot}");
        assert!(!chatbot.contains("DATABASE_URL"), "{chatbot}");
        assert!(!chatbot.contains("CPAR_REMINDER_LEAD"), "{chatbot}");

        let cursos = variables(&CURSOS);
        assert!(cursos.contains("DATABASE_URL"), "{cursos}");
        assert!(cursos.contains("AULA_PEER_TIMEOUT"), "{cursos}");
        assert!(!cursos.contains("GEMINI"), "{cursos}");
        assert!(!cursos.contains('`'), "{cursos}");
        assert!(!cursos.contains("AULA_PORT_OFFSET"), "aula only: {cursos}");

        let gateway = variables(&GATEWAY);
        assert!(gateway.contains("GATEWAY_LISTEN"), "{gateway}");
        assert!(!gateway.contains("AULA_LISTEN\n"), "{gateway}");
    }

    #[test]
    fn the_table_is_embedded() {
        assert!(VARIABLES.len() > 10);
        for v in VARIABLES {
            assert!(!v.names().is_empty(), "{v:?}");
        }
    }
}
