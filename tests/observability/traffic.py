"""Traffic for the live test: a real gRPC client (Python grpcio, stubs generated from
proto/services.proto) calling every service the way users and the gateway do, including calls that
fan out to peers (AskQuestion, SendNotification, NotifySchedule), answers that are errors
(InvalidArgument, NotFound), a server stream, and a schedule close enough to get a reminder."""

from __future__ import annotations

import collections
import datetime as dt
import importlib
import importlib.resources
import sys
from pathlib import Path

import grpc

from contract import REPO

PROTO_DIR = REPO / "proto"


def stubs(out: Path):
    """Generate and import services_pb2 / services_pb2_grpc into `out`."""
    from grpc_tools import protoc

    include = str(importlib.resources.files("grpc_tools") / "_proto")
    out.mkdir(parents=True, exist_ok=True)
    rc = protoc.main(
        ["protoc", f"-I{PROTO_DIR}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}", "services.proto"]
    )
    if rc != 0:
        raise RuntimeError(f"protoc failed on {PROTO_DIR / 'services.proto'}")
    sys.path.insert(0, str(out))
    return importlib.import_module("services_pb2"), importlib.import_module("services_pb2_grpc")


def run(out: Path, ports: dict[str, int], rounds: int = 3) -> collections.Counter:
    """Calls every service `rounds` times; returns a count of (call, status code)."""
    pb, rpc = stubs(out)
    from google.protobuf.timestamp_pb2 import Timestamp

    ch = {name: grpc.insecure_channel(f"127.0.0.1:{port}") for name, port in ports.items()}
    cursos = rpc.CursosServiceStub(ch["cursos"])
    chatbot = rpc.ChatbotServiceStub(ch["chatbot"])
    cpar = rpc.CPARServiceStub(ch["cpar"])
    notificacoes = rpc.NotificacoesServiceStub(ch["notificacoes"])
    insights = rpc.InsightsServiceStub(ch["insights"])
    midia = rpc.MidiaConteudoServiceStub(ch["midia"])
    codes: collections.Counter = collections.Counter()

    def call(name, fn, req, stream=False):
        try:
            resp = fn(req, timeout=15)
            if stream:
                for _ in resp:
                    pass
            codes[(name, "OK")] += 1
            return resp
        except grpc.RpcError as e:
            codes[(name, e.code().name)] += 1
            return None

    soon = Timestamp()
    soon.FromDatetime(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(minutes=10))
    question = dict(id_curso="1", aula_contexto="Aula 1: introducao", duvida="O que e uma variavel?", id_usuario="1")

    for i in range(rounds):
        for name, stub in (("cursos", cursos), ("chatbot", chatbot), ("cpar", cpar),
                           ("notificacoes", notificacoes), ("insights", insights), ("midia", midia)):
            call(f"{name}.GetStatus", stub.GetStatus, pb.Empty())
        call("cursos.ListCourses", cursos.ListCourses, pb.ListCoursesRequest(page_size=10))
        call("cursos.GetUserCourses", cursos.GetUserCourses, pb.GetUserCoursesRequest(id_usuario="1"))
        call("cursos.GetCourse", cursos.GetCourse, pb.GetCourseRequest(id_curso="1"))
        call("cursos.GetCourseMedia", cursos.GetCourseMedia, pb.GetCourseMediaRequest(id_curso="1"))
        call("cursos.Enroll", cursos.Enroll, pb.EnrollRequest(id_usuario=str(10 + i), id_curso="1"))
        call("cursos.AskQuestion", cursos.AskQuestion, pb.AskQuestionRequest(**question))
        call("cursos.SendNotification", cursos.SendNotification,
             pb.SendNotificationRequest(id_usuario="1", message=f"Bem-vindo {i}"))
        # Answers that are errors: a malformed id, a course that does not exist.
        call("cursos.GetUserCourses", cursos.GetUserCourses, pb.GetUserCoursesRequest(id_usuario="abc"))
        call("cursos.GetCourse", cursos.GetCourse, pb.GetCourseRequest(id_curso="999999"))

        call("chatbot.ResolveDuvida", chatbot.ResolveDuvida,
             pb.ChatbotDuvidaRequest(aula_contexto="Aula 2", duvida="Como funciona um laco?", id_curso="1"))
        call("chatbot.ResolveDuvidaStream", chatbot.ResolveDuvidaStream,
             pb.ChatbotDuvidaRequest(aula_contexto="Aula 2", duvida="E uma funcao?", id_curso="1"), stream=True)

        call("cpar.NotifySchedule", cpar.NotifySchedule, pb.NotifyScheduleRequest(id_agendamento="1"))
        created = call("cpar.CreateSchedule", cpar.CreateSchedule,
                       pb.CreateScheduleRequest(id_usuario="1", titulo=f"Monitoria {i}", inicio=soon, duracao_minutos=30))
        if created is not None:
            call("cpar.GetSchedule", cpar.GetSchedule, pb.GetScheduleRequest(id_agendamento=created.id_agendamento))
            call("cpar.NotifySchedule", cpar.NotifySchedule,
                 pb.NotifyScheduleRequest(id_agendamento=created.id_agendamento))
        call("cpar.ListSchedules", cpar.ListSchedules, pb.ListSchedulesRequest(id_usuario="1", page_size=10))

        call("notificacoes.SendNotification", notificacoes.SendNotification,
             pb.SendNotificationRequest(id_usuario="2", message="Direto", origem="teste"))
        call("notificacoes.ListNotifications", notificacoes.ListNotifications,
             pb.ListNotificationsRequest(id_usuario="1", page_size=10))

        call("insights.RecordInteraction", insights.RecordInteraction,
             pb.RecordInteractionRequest(id_interacao=f"obs-test-{i}", id_curso="1", id_usuario="1",
                                         latencia_ms=12, modelo="teste", sucesso=True))
        call("insights.GetCourseInsights", insights.GetCourseInsights, pb.GetCourseInsightsRequest(id_curso="1"))

        call("midia.GetMedia", midia.GetMedia, pb.GetCourseMediaRequest(id_curso="1"))

    # One question Gemini refuses: aula_gemini_requests_total gets an outcome other than ok.
    call("cursos.AskQuestion", cursos.AskQuestion, pb.AskQuestionRequest(**{**question, "duvida": "BLOCK_ME por favor"}))
    for c in ch.values():
        c.close()
    return codes
