//! The `# HELP` text of every metric the platform records, given to each registry when it is
//! created ([`crate::metrics::Metrics::new`]), so a scrape explains every series. A metric
//! added without a line here fails the test in `services/aula/tests/metrics_help.rs`.
//!
//! Names, types and labels are listed in docs/CONFIG.md ("Metrics").

use metrics::Recorder;

/// `(name, help)`. Histograms are in seconds.
pub const HELP: &[(&str, &str)] = &[
    // The gRPC layer (go-grpc-prometheus names), server side.
    ("grpc_server_started_total", "gRPC calls started on the server, by grpc_type, grpc_service and grpc_method."),
    ("grpc_server_handled_total", "gRPC calls completed on the server, by method and grpc_code (OK, InvalidArgument, Unavailable, ...)."),
    ("grpc_server_msg_received_total", "Messages received by the server, by method (one per unary call; each message of a stream)."),
    ("grpc_server_msg_sent_total", "Messages sent by the server, by method (one per unary call; each message of a stream)."),
    ("grpc_server_handling_seconds", "Time from receiving a gRPC call to sending its status, by method."),
    // The same, for calls this service makes to its peers.
    ("grpc_client_started_total", "gRPC calls this service started to a peer, by grpc_service and grpc_method."),
    ("grpc_client_handled_total", "gRPC calls to peers completed, by method and grpc_code."),
    ("grpc_client_msg_received_total", "Messages received from peers, by method."),
    ("grpc_client_msg_sent_total", "Messages sent to peers, by method."),
    ("grpc_client_handling_seconds", "Time from starting a call to a peer to its status, by method."),
    ("aula_peer_connect_attempts_total", "TCP connection attempts to a peer's replicas, by peer (a failed replica is retried after a backoff of 250 ms doubling to 2 s)."),
    // Every service.
    ("aula_build_info", "Always 1; the version label is the running build."),
    ("aula_grpc_connections_open", "Client connections open on the gRPC port."),
    ("aula_in_flight_calls", "gRPC calls being handled now (health checks excluded)."),
    ("aula_max_in_flight", "AULA_MAX_IN_FLIGHT: calls beyond it are refused with RESOURCE_EXHAUSTED."),
    ("aula_max_queued", "AULA_MAX_QUEUED: calls admitted and waiting for the CPU beyond which calls are refused with RESOURCE_EXHAUSTED."),
    ("aula_shed_total", "Calls refused at once to protect the service, by reason (in_flight, queued, streams_total, streams_per_user)."),
    ("aula_authz_denied_total", "Calls refused with PERMISSION_DENIED because the caller's identity may not call the method, by method."),
    ("aula_tls_handshake_failures_total", "TLS handshakes that failed, by side (server/client) and reason."),
    ("aula_fault_injected_total", "Calls failed or delayed on purpose by a fault flag (AULA_FLAGS_FILE, docs/FLAGS.md), by flag: a drill, not an incident."),
    ("aula_tls_certificate_expiry_seconds", "When this service's certificate expires, as a Unix time."),
    // Storage.
    ("aula_db_pool_connections", "Database pool connections, by state (idle, in_use)."),
    ("aula_db_pool_max_connections", "AULA_DB_MAX_CONNECTIONS: the pool's size."),
    ("aula_db_writable", "1 while the database accepts writes (a write probe every second and free disk space), else 0."),
    ("aula_db_connections_discarded_total", "SQLite connections closed on release because a failed transaction left them inside one."),
    // The outbox (cursos, cpar).
    ("aula_outbox_pending", "Messages stored in the outbox and not yet delivered to notificacoes."),
    ("aula_outbox_delivered_total", "Outbox messages delivered to notificacoes."),
    ("aula_outbox_delivery_failures_total", "Outbox delivery attempts that failed (retried with backoff)."),
    ("aula_outbox_dead_letters", "Outbox messages given up on (refused by notificacoes as invalid), kept for inspection."),
    ("aula_outbox_dead_letters_total", "Outbox messages moved to the dead letters."),
    // Services' own.
    ("aula_enrolments_total", "Enrolments made (cursos)."),
    ("aula_notifications_stored_total", "Notifications stored, by origem (notificacoes)."),
    ("aula_notification_streams_open", "SubscribeNotifications streams open (notificacoes)."),
    ("aula_reminders_sent_total", "Appointment reminders handed to the outbox (cpar)."),
    ("aula_chatbot_questions_total", "Questions answered, by mode (gemini, offline) and outcome (ok, error)."),
    ("aula_chatbot_interaction_records_total", "Interactions sent to insights, by outcome (delivered, failed, dropped)."),
    ("aula_gemini_requests_total", "Requests to the Gemini API, by outcome (ok, quota, blocked, timeout, unavailable, error, circuit_open)."),
    ("aula_gemini_request_duration_seconds", "Duration of each request to the Gemini API."),
    ("aula_gemini_tokens_total", "Gemini tokens used, by direction (input, output)."),
    ("aula_interactions_recorded_total", "Chatbot interactions recorded (insights)."),
    // The gateway.
    ("http_requests_total", "HTTP requests answered by the gateway, by method, route and status."),
    ("http_request_duration_seconds", "Time the gateway took to answer, by method and route."),
];

/// Gives `recorder` the help text of every metric.
pub fn describe(recorder: &dyn Recorder) {
    for (name, help) in HELP {
        recorder.describe_counter((*name).into(), None, (*help).into());
    }
}
