-- Demo data of midia, seeded at start-up when AULA_DEMO_DATA=1 (`aula up` and the compose
-- demo set it; a production install leaves it unset). Never in a migration: aula_runtime::demo.
-- Statements both SQLite and PostgreSQL accept, each idempotent (ON CONFLICT DO NOTHING): a
-- restart, a second replica, or a database that already holds these rows changes nothing.

-- The media of the five demo courses of cursos (ids 1..5).
INSERT INTO midias (id, id_curso, titulo, tipo, url, duracao_segundos, ordem, descricao, criada_ms) VALUES
    (1, 1, 'Introdução ao Python', 'video', 'https://midia.aula.dev/cursos/1/01-introducao-ao-python.mp4', 720, 1, 'Instalação do Python 3, o interpretador interativo e o primeiro programa com print(''Olá, mundo!'').', 1735689600000),
    (2, 1, 'Variáveis, tipos e operadores', 'slides', 'https://midia.aula.dev/cursos/1/02-variaveis-tipos-operadores.pdf', 0, 2, 'Inteiros, floats, strings e booleanos; conversão de tipos com int() e str(); operadores aritméticos, de comparação e lógicos.', 1735689600000),
    (3, 1, 'Estruturas de controle: if, for e while', 'video', 'https://midia.aula.dev/cursos/1/03-estruturas-de-controle.mp4', 1080, 3, 'Decisões com if, elif e else; laços for sobre listas e range(); laços while e as instruções break e continue.', 1735689600000),
    (4, 1, 'Funções e módulos', 'texto', 'https://midia.aula.dev/cursos/1/04-funcoes-e-modulos.html', 0, 4, 'Como definir funções com def, parâmetros com valor padrão, retorno de valores e importação de módulos da biblioteca padrão como math e random.', 1735689600000),
    (5, 2, 'Modelo relacional e chaves', 'video', 'https://midia.aula.dev/cursos/2/01-modelo-relacional.mp4', 900, 1, 'Tabelas, linhas e colunas; chaves primárias e estrangeiras; integridade referencial entre tabelas.', 1735689600000),
    (6, 2, 'Consultas SQL com SELECT e JOIN', 'slides', 'https://midia.aula.dev/cursos/2/02-consultas-sql.pdf', 0, 2, 'Filtros com WHERE, ordenação com ORDER BY, agregações com GROUP BY e junções INNER JOIN e LEFT JOIN.', 1735689600000),
    (7, 2, 'Normalização: 1FN, 2FN e 3FN', 'texto', 'https://midia.aula.dev/cursos/2/03-normalizacao.html', 0, 3, 'Dependências funcionais e como decompor tabelas para eliminar redundância e anomalias de inserção, atualização e exclusão.', 1735689600000),
    (8, 3, 'Estrutura de uma página HTML', 'video', 'https://midia.aula.dev/cursos/3/01-estrutura-html.mp4', 600, 1, 'Elementos, atributos, títulos, listas, links e formulários; HTML semântico com header, main e footer.', 1735689600000),
    (9, 3, 'Estilização com CSS e Flexbox', 'video', 'https://midia.aula.dev/cursos/3/02-css-flexbox.mp4', 1320, 2, 'Seletores, modelo de caixa, cores e tipografia; layouts responsivos com Flexbox e media queries.', 1735689600000),
    (10, 3, 'JavaScript e o DOM', 'slides', 'https://midia.aula.dev/cursos/3/03-javascript-dom.pdf', 0, 3, 'Variáveis, funções e eventos em JavaScript; selecionar e alterar elementos da página com querySelector e addEventListener.', 1735689600000),
    (11, 4, 'Listas, pilhas e filas', 'video', 'https://midia.aula.dev/cursos/4/01-listas-pilhas-filas.mp4', 960, 1, 'Listas encadeadas, pilhas (LIFO) e filas (FIFO): operações de inserção e remoção e onde cada estrutura é usada.', 1735689600000),
    (12, 4, 'Complexidade de algoritmos e notação Big O', 'slides', 'https://midia.aula.dev/cursos/4/02-complexidade-big-o.pdf', 0, 2, 'Como medir o custo de um algoritmo: O(1), O(log n), O(n), O(n log n) e O(n²), com exemplos de busca linear e busca binária.', 1735689600000),
    (13, 4, 'Algoritmos de ordenação', 'video', 'https://midia.aula.dev/cursos/4/03-ordenacao.mp4', 1500, 3, 'Bubble sort, insertion sort, merge sort e quicksort passo a passo, comparando estabilidade e complexidade.', 1735689600000),
    (14, 4, 'Árvores binárias de busca', 'texto', 'https://midia.aula.dev/cursos/4/04-arvores-binarias.html', 0, 4, 'Inserção, busca e remoção em árvores binárias de busca; percursos em ordem, pré-ordem e pós-ordem; balanceamento.', 1735689600000),
    (15, 5, 'O modelo OSI e a pilha TCP/IP', 'video', 'https://midia.aula.dev/cursos/5/01-modelo-osi-tcp-ip.mp4', 840, 1, 'As sete camadas do modelo OSI, as quatro camadas do TCP/IP e o encapsulamento dos dados de camada em camada.', 1735689600000),
    (16, 5, 'Endereçamento IP e sub-redes', 'slides', 'https://midia.aula.dev/cursos/5/02-enderecamento-ip.pdf', 0, 2, 'Endereços IPv4 e IPv6, máscaras de sub-rede, notação CIDR e cálculo de sub-redes.', 1735689600000),
    (17, 5, 'DNS, HTTP e a camada de aplicação', 'texto', 'https://midia.aula.dev/cursos/5/03-dns-http.html', 0, 3, 'Como um nome vira um endereço com o DNS, e como navegador e servidor conversam com HTTP: métodos, códigos de status e cabeçalhos.', 1735689600000)
ON CONFLICT (id) DO NOTHING;
