//! The flags file: flagd's flag-definition format (`{"flags": {NAME: {"state", "variants",
//! "defaultVariant"}}}`), so flagd and OpenFeature tooling can manage the same file.
//!
//! Evaluation is flagd's without targeting: an `ENABLED` flag has the value of its
//! `defaultVariant`, a `DISABLED` one is off (the caller's default). `targeting`, `metadata` and
//! `$schema` are accepted and ignored. Flags outside `fault.` are left alone (the file may carry
//! other flags); every `fault.` flag is checked, all its variants, so a typo or a value out of
//! range is refused when the file is written instead of silently doing nothing in a drill.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What a `fault.` flag does, by the last part of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A number 0..1: that share of calls fail.
    ErrorRatio,
    /// A gRPC code name (`UNAVAILABLE`, `INTERNAL`, ...): the code the failed calls get.
    ErrorCode,
    /// A number of milliseconds (0..60000) added to each call.
    LatencyMs,
    /// A boolean: health NOT_SERVING and every call UNAVAILABLE (service-wide only).
    Unavailable,
    /// A boolean, chatbot only: the Gemini client behaves as if Gemini answered 503.
    GeminiOutage,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::ErrorRatio,
        Kind::ErrorCode,
        Kind::LatencyMs,
        Kind::Unavailable,
        Kind::GeminiOutage,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Kind::ErrorRatio => "error_ratio",
            Kind::ErrorCode => "error_code",
            Kind::LatencyMs => "latency_ms",
            Kind::Unavailable => "unavailable",
            Kind::GeminiOutage => "gemini_outage",
        }
    }

    fn from_key(key: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.key() == key)
    }

    /// Whether `value` is a valid value of this kind; `Err` says what is expected.
    pub fn check(self, value: &Value) -> Result<(), String> {
        let ok = match self {
            Kind::ErrorRatio => value.as_f64().is_some_and(|v| (0.0..=1.0).contains(&v)),
            Kind::LatencyMs => value
                .as_f64()
                .is_some_and(|v| (0.0..=MAX_LATENCY_MS).contains(&v)),
            Kind::ErrorCode => value.as_str().and_then(code_from_name).is_some(),
            Kind::Unavailable | Kind::GeminiOutage => value.is_boolean(),
        };
        if ok {
            return Ok(());
        }
        Err(match self {
            Kind::ErrorRatio => "a number from 0 to 1".into(),
            Kind::LatencyMs => format!("a number of milliseconds from 0 to {MAX_LATENCY_MS}"),
            Kind::ErrorCode => "a gRPC code name such as UNAVAILABLE, INTERNAL, \
                 DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED"
                .into(),
            Kind::Unavailable | Kind::GeminiOutage => "true or false".into(),
        })
    }
}

/// The most latency one flag adds: a minute is beyond every deadline the platform sets.
pub const MAX_LATENCY_MS: f64 = 60_000.0;

/// A `fault.` flag name taken apart: `fault.<service>[.<Method>].<kind>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultName {
    pub service: String,
    pub method: Option<String>,
    pub kind: Kind,
}

/// Parses and checks a `fault.` name against the catalogue (services, their methods).
pub fn fault_name(name: &str) -> Result<FaultName, String> {
    let rest = name.strip_prefix("fault.").ok_or("not a fault. flag")?;
    let parts: Vec<&str> = rest.split('.').collect();
    let (service, method, kind) = match parts.as_slice() {
        [s, k] => (*s, None, *k),
        [s, m, k] => (*s, Some(*m), *k),
        _ => {
            return Err("expected fault.<service>.<kind> or fault.<service>.<Method>.<kind>".into())
        }
    };
    let spec = crate::spec::by_name(service).ok_or_else(|| {
        format!(
            "no service {service:?}; expected one of {}",
            crate::spec::ALL
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let kind = Kind::from_key(kind).ok_or_else(|| {
        format!(
            "no fault kind {kind:?}; expected one of {}",
            Kind::ALL.map(Kind::key).join(", ")
        )
    })?;
    if kind == Kind::GeminiOutage && (service != "chatbot" || method.is_some()) {
        return Err("gemini_outage exists only as fault.chatbot.gemini_outage".into());
    }
    if kind == Kind::Unavailable && method.is_some() {
        return Err("unavailable is service-wide: fault.<service>.unavailable".into());
    }
    if let Some(m) = method {
        let path = format!("/{}/{m}", spec.grpc_service);
        if !crate::observe::known_methods(&[spec.grpc_service])
            .iter()
            .any(|(p, _)| *p == path)
        {
            return Err(format!("{} has no method {m:?}", spec.grpc_service));
        }
    }
    Ok(FaultName {
        service: service.to_string(),
        method: method.map(str::to_string),
        kind,
    })
}

/// The enabled flags' values, after checking the whole file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Values(pub BTreeMap<String, Value>);

/// Parses a flags file; `Err` says what is wrong, naming the flag.
pub fn parse(text: &str) -> Result<Values, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let flags = doc
        .get("flags")
        .and_then(Value::as_object)
        .ok_or("no \"flags\" object at the top level")?;
    let mut out = BTreeMap::new();
    for (name, def) in flags {
        if let Some(value) = evaluate(name, def).map_err(|e| format!("{name}: {e}"))? {
            out.insert(name.clone(), value);
        }
    }
    Ok(Values(out))
}

/// One flag's value: `None` when it is disabled.
fn evaluate(name: &str, def: &Value) -> Result<Option<Value>, String> {
    let def = def.as_object().ok_or("a flag is an object")?;
    let enabled = match def.get("state").and_then(Value::as_str) {
        Some("ENABLED") => true,
        Some("DISABLED") => false,
        _ => return Err("\"state\" must be \"ENABLED\" or \"DISABLED\"".into()),
    };
    let variants = def
        .get("variants")
        .and_then(Value::as_object)
        .filter(|v| !v.is_empty())
        .ok_or("\"variants\" must be a non-empty object")?;
    let default = def
        .get("defaultVariant")
        .and_then(Value::as_str)
        .ok_or("\"defaultVariant\" must name a variant")?;
    let value = variants
        .get(default)
        .ok_or_else(|| format!("defaultVariant {default:?} is not one of its variants"))?;
    if name.starts_with("fault.") {
        let kind = fault_name(name)?.kind;
        for (variant, v) in variants {
            kind.check(v)
                .map_err(|want| format!("variant {variant:?} is {v}, expected {want}"))?;
        }
    }
    Ok(enabled.then(|| value.clone()))
}

/// gRPC code names as the specification spells them (`DEADLINE_EXCEEDED`), any case.
pub fn code_from_name(name: &str) -> Option<tonic::Code> {
    use tonic::Code::*;
    let codes = [
        Cancelled,
        Unknown,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Unimplemented,
        Internal,
        Unavailable,
        DataLoss,
        Unauthenticated,
    ];
    let wanted = name.trim().replace('_', "").to_ascii_lowercase();
    codes.into_iter().find(|c| {
        let spelled = format!("{c:?}").to_ascii_lowercase();
        spelled == wanted || (wanted == "canceled" && *c == Cancelled)
    })
}

/// The file `aula flags` starts from: every fault flag of every service, disabled, with
/// ready variants (a drill is `aula flags set NAME VARIANT`).
pub fn template() -> Value {
    let mut flags = Map::new();
    let mut add = |name: String, variants: Value, default: &str| {
        flags.insert(
            name,
            serde_json::json!({"state": "DISABLED", "variants": variants, "defaultVariant": default}),
        );
    };
    for spec in crate::spec::ALL {
        let s = spec.name;
        add(
            format!("fault.{s}.error_ratio"),
            serde_json::json!({"off": 0, "10%": 0.1, "50%": 0.5, "all": 1}),
            "off",
        );
        add(
            format!("fault.{s}.error_code"),
            serde_json::json!({"UNAVAILABLE": "UNAVAILABLE", "INTERNAL": "INTERNAL",
                "DEADLINE_EXCEEDED": "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED": "RESOURCE_EXHAUSTED"}),
            "UNAVAILABLE",
        );
        add(
            format!("fault.{s}.latency_ms"),
            serde_json::json!({"off": 0, "150ms": 150, "500ms": 500, "2s": 2000}),
            "off",
        );
        add(
            format!("fault.{s}.unavailable"),
            serde_json::json!({"off": false, "on": true}),
            "off",
        );
    }
    add(
        "fault.chatbot.gemini_outage".into(),
        serde_json::json!({"off": false, "on": true}),
        "off",
    );
    serde_json::json!({
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "flags": flags,
    })
}

/// `aula flags set NAME VARIANT`: enables `name` with `variant`. A variant the flag does not
/// have is added when it is a valid value of a fault flag (`set fault.cursos.error_ratio 0.3`).
pub fn set(doc: &mut Value, name: &str, variant: &str) -> Result<(), String> {
    let kind = if name.starts_with("fault.") {
        Some(fault_name(name).map_err(|e| format!("{name}: {e}"))?.kind)
    } else {
        None
    };
    let flags = doc
        .get_mut("flags")
        .and_then(Value::as_object_mut)
        .ok_or("the file has no \"flags\" object")?;
    let flag = flags
        .get_mut(name)
        .ok_or_else(|| format!("no flag {name:?} in the file (`aula flags list` shows them)"))?;
    let def = flag.as_object_mut().ok_or("the flag is not an object")?;
    let variants = def
        .entry("variants")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or("\"variants\" is not an object")?;
    if !variants.contains_key(variant) {
        let Some(kind) = kind else {
            return Err(format!(
                "{name} has no variant {variant:?}; it has {}",
                variants.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        };
        let value: Value =
            serde_json::from_str(variant).unwrap_or_else(|_| Value::String(variant.to_string()));
        kind.check(&value).map_err(|want| {
            format!(
                "{name} has no variant {variant:?} (it has {}) and {variant:?} is not {want}",
                variants.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })?;
        variants.insert(variant.to_string(), value);
    }
    def.insert("defaultVariant".into(), Value::String(variant.into()));
    def.insert("state".into(), Value::String("ENABLED".into()));
    Ok(())
}

/// `aula flags clear`: every `fault.` flag disabled (other flags are not ours to touch).
pub fn clear(doc: &mut Value) {
    if let Some(flags) = doc.get_mut("flags").and_then(Value::as_object_mut) {
        for (name, def) in flags.iter_mut() {
            if let (true, Some(def)) = (name.starts_with("fault."), def.as_object_mut()) {
                def.insert("state".into(), Value::String("DISABLED".into()));
            }
        }
    }
}

/// A flags file being edited (`aula flags`, tests): read, changed, written back whole.
#[derive(Debug, Clone)]
pub struct FlagsFile {
    pub path: std::path::PathBuf,
    pub doc: Value,
}

impl FlagsFile {
    /// The file at `path`, or [`template`] when there is none yet. A file that is not a valid
    /// flags file is an error naming the mistake (nothing is overwritten).
    pub fn open(path: &std::path::Path) -> Result<FlagsFile, String> {
        let doc = match std::fs::read_to_string(path) {
            Ok(text) => {
                parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => template(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(FlagsFile {
            path: path.to_path_buf(),
            doc,
        })
    }

    pub fn set(&mut self, name: &str, variant: &str) -> Result<&mut Self, String> {
        set(&mut self.doc, name, variant)?;
        Ok(self)
    }

    pub fn clear(&mut self) -> &mut Self {
        clear(&mut self.doc);
        self
    }

    /// Writes the file whole (a temporary file renamed over it), so a service never reads
    /// half of it.
    pub fn save(&self) -> Result<(), String> {
        let text = serde_json::to_string_pretty(&self.doc).map_err(|e| e.to_string())? + "\n";
        write_atomically(&self.path, &text)
    }

    /// Every flag: name, state, default variant and its value.
    pub fn list(&self) -> Vec<(String, String, String, Value)> {
        let Some(flags) = self.doc.get("flags").and_then(Value::as_object) else {
            return Vec::new();
        };
        flags
            .iter()
            .map(|(name, def)| {
                let s = |k: &str| def.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let variant = s("defaultVariant");
                let value = def
                    .get("variants")
                    .and_then(|v| v.get(&variant))
                    .cloned()
                    .unwrap_or(Value::Null);
                (name.clone(), s("state"), variant, value)
            })
            .collect()
    }
}

/// Writes `text` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomically(path: &std::path::Path, text: &str) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let name = path
        .file_name()
        .map_or("flags".into(), |n| n.to_string_lossy());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_flags_take_their_default_variant() {
        let v = parse(
            r#"{"flags": {
                "fault.cursos.error_ratio": {"state": "ENABLED", "variants": {"off": 0, "half": 0.5}, "defaultVariant": "half"},
                "fault.cursos.latency_ms": {"state": "DISABLED", "variants": {"off": 0, "x": 100}, "defaultVariant": "x"},
                "new-ui": {"state": "ENABLED", "variants": {"on": "anything"}, "defaultVariant": "on", "targeting": {}}
            }}"#,
        )
        .unwrap();
        assert_eq!(v.0["fault.cursos.error_ratio"], 0.5);
        assert!(!v.0.contains_key("fault.cursos.latency_ms"));
        assert_eq!(v.0["new-ui"], "anything");
    }

    #[test]
    fn mistakes_name_the_flag_and_what_is_expected() {
        let bad = |flags: &str| parse(&format!(r#"{{"flags": {{{flags}}}}}"#)).unwrap_err();
        let e = bad(
            r#""fault.cursos.error_ratio": {"state": "ENABLED", "variants": {"off": 0, "x": 1.5}, "defaultVariant": "off"}"#,
        );
        assert!(
            e.starts_with("fault.cursos.error_ratio: variant \"x\" is 1.5"),
            "{e}"
        );
        let e = bad(
            r#""fault.cursos.eror_ratio": {"state": "ENABLED", "variants": {"on": 1}, "defaultVariant": "on"}"#,
        );
        assert!(e.contains("no fault kind \"eror_ratio\""), "{e}");
        let e = bad(
            r#""fault.curso.error_ratio": {"state": "ENABLED", "variants": {"on": 1}, "defaultVariant": "on"}"#,
        );
        assert!(e.contains("no service \"curso\""), "{e}");
        let e = bad(
            r#""fault.cursos.GetUserCourse.error_ratio": {"state": "ENABLED", "variants": {"on": 1}, "defaultVariant": "on"}"#,
        );
        assert!(e.contains("has no method \"GetUserCourse\""), "{e}");
        let e = bad(
            r#""fault.cursos.unavailable": {"state": "ON", "variants": {"on": true}, "defaultVariant": "on"}"#,
        );
        assert!(e.contains("\"state\""), "{e}");
        let e = bad(
            r#""fault.cursos.unavailable": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "yes"}"#,
        );
        assert!(e.contains("defaultVariant \"yes\""), "{e}");
        assert!(parse("{").unwrap_err().starts_with("not JSON"));
        assert!(parse("{}").unwrap_err().contains("\"flags\""));
        assert!(parse(r#"{"flags": {"fault.cursos.GetUserCourses.latency_ms": {"state": "ENABLED", "variants": {"on": 5}, "defaultVariant": "on"}}}"#).is_ok());
    }

    #[test]
    fn the_template_is_valid_and_all_off_and_set_and_clear_edit_it() {
        let mut doc = template();
        assert_eq!(parse(&doc.to_string()).unwrap(), Values::default());
        set(&mut doc, "fault.midia.error_ratio", "50%").unwrap();
        set(&mut doc, "fault.midia.latency_ms", "250").unwrap();
        set(&mut doc, "fault.midia.error_code", "internal").unwrap();
        let v = parse(&doc.to_string()).unwrap();
        assert_eq!(v.0["fault.midia.error_ratio"], 0.5);
        assert_eq!(v.0["fault.midia.latency_ms"], 250);
        assert_eq!(v.0["fault.midia.error_code"], "internal");
        let e = set(&mut doc, "fault.midia.error_ratio", "lots").unwrap_err();
        assert!(e.contains("not a number from 0 to 1"), "{e}");
        assert!(set(&mut doc, "fault.nada.error_ratio", "50%").is_err());
        clear(&mut doc);
        assert_eq!(parse(&doc.to_string()).unwrap(), Values::default());
    }

    #[test]
    fn code_names() {
        assert_eq!(
            code_from_name("UNAVAILABLE"),
            Some(tonic::Code::Unavailable)
        );
        assert_eq!(
            code_from_name("deadline_exceeded"),
            Some(tonic::Code::DeadlineExceeded)
        );
        assert_eq!(code_from_name("CANCELED"), Some(tonic::Code::Cancelled));
        assert_eq!(code_from_name("OK"), None);
        assert_eq!(code_from_name("NOPE"), None);
    }
}
