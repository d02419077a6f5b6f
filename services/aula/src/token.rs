//! `aula token`: a development token for `aula up --auth`, signed with the key it generated in
//! its data directory. Production tokens come from an identity provider (docs/AUTH.md).

use aula_runtime::{auth::dev, config::parse_duration, Env};
use clap::Args;
use std::{path::PathBuf, process::ExitCode, time::Duration};

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The user (`id_usuario`, a positive integer) the token is for
    #[arg(long)]
    pub user: String,
    /// A role to grant (repeatable), e.g. `--role staff`
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// How long the token is valid: 30m, 1h, 24h
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    /// The data directory of `aula up --auth` [env: AULA_DATA_DIR, default ./data]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

pub fn run(args: TokenArgs) -> ExitCode {
    match token(&args) {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("aula token: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn token(args: &TokenArgs) -> anyhow::Result<String> {
    aula_runtime::ids::UserId::parse(&args.user)
        .map_err(|_| anyhow::anyhow!("--user must be a positive integer (an id_usuario)"))?;
    let ttl = parse_duration(&args.ttl)
        .filter(|d| !d.is_zero() && *d <= Duration::from_secs(30 * 86_400))
        .ok_or_else(|| {
            anyhow::anyhow!("--ttl: expected a duration up to 30 days, such as 30m or 1h")
        })?;
    let dir = args.data_dir.clone().unwrap_or_else(|| {
        PathBuf::from(Env::from_process().get("AULA_DATA_DIR").unwrap_or("./data"))
    });
    let key = dev::DevKeys::in_data_dir(&dir).load()?;
    let roles: Vec<&str> = args.roles.iter().map(String::as_str).collect();
    Ok(key.sign(&dev::claims(args.user.trim(), &roles, ttl)))
}
