//! `aula flags list | set NAME VARIANT | clear`: edits the fault flags file of the local stack
//! (docs/FLAGS.md). `aula up` reads `<data dir>/flags.json` unless `AULA_FLAGS_FILE` names
//! another; this command edits the same file, and the running services apply the change within
//! a second. A missing file is every flag off: the first edit writes every flag there is.

use aula_runtime::flags::file::FlagsFile;
use clap::{Args, Subcommand};
use std::{path::PathBuf, process::ExitCode};

#[derive(Debug, Args)]
pub struct FlagsArgs {
    /// The flags file [env: AULA_FLAGS_FILE; default <data dir>/flags.json, as `aula up`]
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The data directory `aula up` runs with [env: AULA_DATA_DIR, default ./data]
    #[arg(long)]
    pub data_dir: Option<String>,
    #[command(subcommand)]
    pub command: FlagsCommand,
}

#[derive(Debug, Subcommand)]
pub enum FlagsCommand {
    /// Every flag, its state and the value it has now
    List,
    /// Switch NAME on with VARIANT (a variant of the flag, or a value: `set
    /// fault.cursos.error_ratio 0.3`)
    Set { name: String, variant: String },
    /// Switch every fault flag off
    Clear,
}

/// The file `aula up` gives its services: `AULA_FLAGS_FILE`, else `<data dir>/flags.json`.
pub fn default_path(env: &aula_runtime::Env, data_dir: Option<&str>) -> PathBuf {
    if let Some(f) = env.get("AULA_FLAGS_FILE") {
        return PathBuf::from(f);
    }
    let dir = data_dir.or(env.get("AULA_DATA_DIR")).unwrap_or("./data");
    PathBuf::from(dir).join("flags.json")
}

pub fn run(args: FlagsArgs) -> ExitCode {
    let env = aula_runtime::Env::from_process();
    let path = args
        .file
        .clone()
        .unwrap_or_else(|| default_path(&env, args.data_dir.as_deref()));
    match execute(&path, &args.command) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("aula flags: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs one command on the file at `path`; what to print.
pub fn execute(path: &std::path::Path, command: &FlagsCommand) -> Result<String, String> {
    let mut file = FlagsFile::open(path)?;
    match command {
        FlagsCommand::List => {
            let rows = file.list();
            let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(4);
            let mut out = format!("# {}\n", path.display());
            out.push_str(&format!(
                "{:<width$}  {:<8}  {:<18}  VALUE\n",
                "FLAG", "STATE", "VARIANT"
            ));
            for (name, state, variant, value) in rows {
                out.push_str(&format!(
                    "{name:<width$}  {state:<8}  {variant:<18}  {value}\n"
                ));
            }
            Ok(out)
        }
        FlagsCommand::Set { name, variant } => {
            file.set(name, variant)?;
            file.save()?;
            let value = file
                .list()
                .into_iter()
                .find(|r| r.0 == *name)
                .map(|r| r.3.to_string())
                .unwrap_or_default();
            Ok(format!(
                "{name} = {value} (variant {variant}) in {}; running services apply it within a second\n",
                path.display()
            ))
        }
        FlagsCommand::Clear => {
            file.clear();
            file.save()?;
            Ok(format!("every fault flag is off in {}\n", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_list_clear_edit_the_file_the_services_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flags.json");
        let list = execute(&path, &FlagsCommand::List).unwrap();
        assert!(list.contains("fault.cursos.error_ratio"), "{list}");
        assert!(!path.exists(), "listing writes nothing");

        let out = execute(
            &path,
            &FlagsCommand::Set {
                name: "fault.cursos.error_ratio".into(),
                variant: "50%".into(),
            },
        )
        .unwrap();
        assert!(out.starts_with("fault.cursos.error_ratio = 0.5"), "{out}");
        let text = std::fs::read_to_string(&path).unwrap();
        let values = aula_runtime::flags::file::parse(&text).unwrap();
        assert_eq!(values.0["fault.cursos.error_ratio"], 0.5);

        let e = execute(
            &path,
            &FlagsCommand::Set {
                name: "fault.cursos.error_ratio".into(),
                variant: "most".into(),
            },
        )
        .unwrap_err();
        assert!(e.contains("is not a number from 0 to 1"), "{e}");

        execute(&path, &FlagsCommand::Clear).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(aula_runtime::flags::file::parse(&text)
            .unwrap()
            .0
            .is_empty());

        // A file someone broke is named and left as it is.
        std::fs::write(&path, "{").unwrap();
        let e = execute(&path, &FlagsCommand::Clear).unwrap_err();
        assert!(e.contains("not JSON"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{");
    }

    /// The file docker-compose.yml mounts into every service: every flag, all off.
    #[test]
    fn the_compose_file_is_the_template() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../flags/flags.json");
        let text = std::fs::read_to_string(path).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            doc,
            aula_runtime::flags::file::template(),
            "regenerate it: rm flags/flags.json && aula flags --file flags/flags.json clear"
        );
    }

    #[test]
    fn the_default_file_is_the_one_aula_up_uses() {
        let env = aula_runtime::Env::from_pairs([("AULA_DATA_DIR", "/tmp/d")]);
        assert_eq!(default_path(&env, None), PathBuf::from("/tmp/d/flags.json"));
        assert_eq!(default_path(&env, Some("x")), PathBuf::from("x/flags.json"));
        let env = aula_runtime::Env::from_pairs([("AULA_FLAGS_FILE", "/f.json")]);
        assert_eq!(default_path(&env, Some("x")), PathBuf::from("/f.json"));
    }
}
