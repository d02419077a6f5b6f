use std::process::ExitCode;

fn main() -> ExitCode {
    aula_runtime::cli::service_main(gateway::service())
}
