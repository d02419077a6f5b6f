-- Demo data of cursos, seeded at start-up when AULA_DEMO_DATA=1 (`aula up` and the compose
-- demo set it; a production install leaves it unset). Never in a migration: aula_runtime::demo.
-- Statements both SQLite and PostgreSQL accept, each idempotent (ON CONFLICT DO NOTHING): a
-- restart, a second replica, or a database that already holds these rows changes nothing.

-- Five courses, and user 1 enrolled in courses 1 and 2.
INSERT INTO cursos (id, nome, descricao, carga_horaria, instrutor, categoria, criado_ms) VALUES
    (1, 'Introdução à Programação com Python', 'Lógica de programação com Python 3: variáveis, tipos, estruturas de controle, funções e módulos, com exercícios práticos desde o primeiro programa.', 40, 'Ana Souza', 'Programação', 1735689600000),
    (2, 'Banco de Dados Relacionais', 'Modelagem relacional, SQL (consultas, junções e agregações) e normalização, do projeto do esquema às consultas do dia a dia.', 48, 'Carlos Mendes', 'Banco de Dados', 1735689600000),
    (3, 'Desenvolvimento Web com HTML, CSS e JavaScript', 'Páginas web do zero: estrutura semântica com HTML, estilo e layout responsivo com CSS e Flexbox, interatividade com JavaScript e o DOM.', 60, 'Juliana Ferreira', 'Desenvolvimento Web', 1735689600000),
    (4, 'Estruturas de Dados e Algoritmos', 'Listas, pilhas, filas e árvores; análise de complexidade com a notação Big O; algoritmos clássicos de busca e ordenação.', 64, 'Rafael Lima', 'Ciência da Computação', 1735689600000),
    (5, 'Redes de Computadores', 'Os modelos OSI e TCP/IP, endereçamento IP e sub-redes, e os protocolos da camada de aplicação como DNS e HTTP.', 48, 'Patrícia Rocha', 'Infraestrutura', 1735689600000)
ON CONFLICT (id) DO NOTHING;

INSERT INTO inscricoes (id_usuario, id_curso, criada_ms) VALUES
    (1, 1, 1735689600000),
    (1, 2, 1735689600000)
ON CONFLICT (id_usuario, id_curso) DO NOTHING;
