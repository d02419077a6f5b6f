//! The floor of the benchmarks (scripts/bench.sh): a bare tonic server, no middleware, no
//! metrics, no storage, answering CursosService GetStatus and GetUserCourses with fixed
//! responses. What cursos does beyond this is what the benchmark's ratio measures.
//!
//! With `--from URL` the fixed responses are copied from a running cursos (GetStatus, and
//! GetUserCourses for `--user`), so both servers send the same bytes; without it, three demo
//! courses stand in.
//!
//! ```text
//! cargo run --release -p aula --example floor -- --listen 127.0.0.1:50151 --from http://127.0.0.1:50051
//! ```

use aula_api::{
    cursos_service_client::CursosServiceClient,
    stubbed::cursos_service_server::{CursosService, CursosServiceServer},
    *,
};
use clap::Parser;
use prost::Message as _;
use std::net::SocketAddr;
use tonic::{Request, Response, Status};

/// The services' allocator (aula_runtime sets it for every service binary): the ratio measures
/// what cursos does per request, not whose malloc is faster.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// Address to serve on
    #[arg(long, default_value = "127.0.0.1:50151")]
    listen: SocketAddr,
    /// A running cursos to copy the responses from
    #[arg(long)]
    from: Option<String>,
    /// The user whose courses are copied
    #[arg(long, default_value = "1")]
    user: String,
    /// Serve a pre-bound listener through `serve_with_incoming_shutdown`, as aula_runtime
    /// did before it served connections itself (#14), without setting TCP_NODELAY on accepted sockets (tonic ignores the builder's
    /// `tcp_nodelay` there): reproduces the Nagle/delayed-ACK stall BENCHMARKS.md describes
    #[arg(long)]
    plain_incoming: bool,
}

struct Floor {
    status: StatusResponse,
    courses: GetUserCoursesResponse,
}

#[tonic::async_trait]
impl CursosService for Floor {
    async fn get_status(&self, _: Request<Empty>) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(self.status.clone()))
    }

    async fn get_user_courses(
        &self,
        _: Request<GetUserCoursesRequest>,
    ) -> Result<Response<GetUserCoursesResponse>, Status> {
        Ok(Response::new(self.courses.clone()))
    }
}

fn demo(user: &str) -> Floor {
    let course = |id: i32, nome: &str, categoria: &str| Course {
        id,
        nome: nome.into(),
        descricao: format!("Curso de {nome}"),
        carga_horaria: 40,
        instrutor: "Equipe Aula".into(),
        categoria: categoria.into(),
    };
    Floor {
        status: StatusResponse {
            message: "Serviço de cursos ativo".into(),
            servico: "cursos".into(),
            versao: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        },
        courses: GetUserCoursesResponse {
            message: format!("Cursos do usuário {user}"),
            cursos_inscritos: vec![
                course(1, "Python", "programação"),
                course(2, "Rust", "programação"),
                course(3, "Sistemas Distribuídos", "computação"),
            ],
        },
    }
}

async fn copy_from(url: &str, user: &str) -> anyhow::Result<Floor> {
    let mut client = CursosServiceClient::connect(url.to_string()).await?;
    let status = client.get_status(Empty {}).await?.into_inner();
    let courses = client
        .get_user_courses(GetUserCoursesRequest {
            id_usuario: user.into(),
        })
        .await?
        .into_inner();
    Ok(Floor { status, courses })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let floor = match &args.from {
        Some(url) => copy_from(url, &args.user).await?,
        None => demo(&args.user),
    };
    eprintln!(
        "floor: serving on {} (GetStatus {} bytes, GetUserCourses {} bytes, {} courses{})",
        args.listen,
        floor.status.encoded_len(),
        floor.courses.encoded_len(),
        floor.courses.cursos_inscritos.len(),
        args.from
            .as_ref()
            .map_or(String::new(), |u| format!(", copied from {u}")),
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    // Health too, and nothing else: `aula load` asks it before sending load (bench.sh's
    // latency at half rate runs against the floor as well), and a call to it costs nothing
    // on the measured paths.
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<CursosServiceServer<Floor>>().await;
    let server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(health_service)
        .add_service(CursosServiceServer::new(floor));
    if args.plain_incoming {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        server
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await?;
    } else {
        server.serve_with_shutdown(args.listen, shutdown).await?;
    }
    Ok(())
}
