"""The little SQL the native front end must understand before a statement reaches the engine.

A real server parses every statement; we only need to recognise a few shapes, and a tokenizer
that respects quotes, comments and brackets is enough for them:

- `INSERT INTO t [(cols)] [SETTINGS ...] VALUES|FORMAT x` with nothing after: the rows come from
  the client as Data blocks, so the server asks for them with the table's sample block;
- `SET name = value, ...` and `USE db`: session state, which belongs to the connection, not to
  the one chDB session that all connections share;
- a trailing `FORMAT x` on other statements: over TCP a server always answers in Data blocks
  and the client formats them, whereas chDB would honour the clause and break our framing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stir.clickhouse import quote_identifier
from stir.stack.clickhouse.engine import file_function
from stir.stack.clickhouse.native_protocol import unquote

_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_NUMBER_RE = re.compile(r"[0-9][0-9A-Za-z_.]*(?:[eEpP][+-]?[0-9]+)?")
_OPEN, _CLOSE = "([{", ")]}"


@dataclass(frozen=True)
class Token:
    kind: str  # word, quoted (identifier), string, number, punct
    text: str
    start: int
    end: int
    depth: int  # bracket depth before the token

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words


def tokenize(sql: str) -> list[Token]:
    """Significant tokens of `sql` (no whitespace or comments)."""
    tokens: list[Token] = []
    i, depth, n = 0, 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
        elif sql.startswith("--", i) or ch == "#":
            nl = sql.find("\n", i)
            i = n if nl < 0 else nl + 1
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            i = n if close < 0 else close + 2
        elif ch in "'`\"":
            j = i + 1
            while j < n:
                if sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:  # doubled quote inside the literal
                        j += 2
                        continue
                    break
                j += 1
            end = min(j + 1, n)
            kind = "string" if ch == "'" else "quoted"
            tokens.append(Token(kind, sql[i:end], i, end, depth))
            i = end
        elif match := _WORD_RE.match(sql, i):
            tokens.append(Token("word", match.group(), i, match.end(), depth))
            i = match.end()
        elif match := _NUMBER_RE.match(sql, i):
            tokens.append(Token("number", match.group(), i, match.end(), depth))
            i = match.end()
        else:
            if ch in _CLOSE:
                depth = max(depth - 1, 0)
            tokens.append(Token("punct", ch, i, i + 1, depth))
            if ch in _OPEN:
                depth += 1
            i += 1
    while tokens and tokens[-1].kind == "punct" and tokens[-1].text == ";":
        tokens.pop()
    return tokens


def identifier(token: Token) -> str:
    """The name a word or quoted-identifier token stands for."""
    if token.kind == "quoted":
        return unquote("'" + token.text[1:-1].replace("'", "\\'") + "'")
    return token.text


def _matching_close(tokens: list[Token], open_index: int) -> int:
    depth = tokens[open_index].depth
    for j in range(open_index + 1, len(tokens)):
        token = tokens[j]
        if token.kind == "punct" and token.text in _CLOSE and token.depth == depth:
            return j
    return len(tokens) - 1


@dataclass(frozen=True)
class InsertStatement:
    """An INSERT whose rows the client sends as Data blocks."""

    target: str  # as written: 'db.t', '`t`', or 'FUNCTION s3(...)'
    columns: str | None  # the text inside the column list's parentheses, if there is one
    settings: str  # 'SETTINGS a = 1' or ''

    @property
    def is_function(self) -> bool:
        return self.target.upper().startswith("FUNCTION")

    def from_file(self, column_names: list[str], path: str) -> str:
        """The INSERT that loads the client's blocks, spooled to a Native file at `path`."""
        columns = ", ".join(quote_identifier(name) for name in column_names)
        head = f"INSERT INTO {self.target} ({columns}) {self.settings}".rstrip()
        return f"{head} SELECT {columns} FROM {file_function(path, 'Native')}"

    def sample_query(self) -> str:
        """A DESCRIBE of the columns the client must send.

        Described, not run: a SELECT of a Distributed table or remote(), even with LIMIT 0,
        would ask every shard.
        """
        columns = self.columns if self.columns is not None else "*"
        source = self.target[len("FUNCTION") :].strip() if self.is_function else self.target
        return f"DESCRIBE TABLE (SELECT {columns} FROM {source} LIMIT 0)"


def parse_client_insert(sql: str) -> InsertStatement | None:
    """The INSERT if its data is to come from the client, else None (run it as a query)."""
    tokens = tokenize(sql)
    if len(tokens) < 3 or not (tokens[0].is_word("INSERT") and tokens[1].is_word("INTO")):
        return None
    i = 2
    if tokens[i].is_word("TABLE"):
        i += 1
    if i >= len(tokens):
        return None
    start = tokens[i].start
    if tokens[i].is_word("FUNCTION"):
        # FUNCTION name(args...)
        if i + 2 >= len(tokens) or tokens[i + 2].text != "(":
            return None
        i = _matching_close(tokens, i + 2) + 1
    else:
        # name or db.name
        i += 1
        while i + 1 < len(tokens) and tokens[i].text == "." and tokens[i].kind == "punct":
            i += 2
    target = sql[start : tokens[i - 1].end]
    columns = None
    if i < len(tokens) and tokens[i].kind == "punct" and tokens[i].text == "(":
        close = _matching_close(tokens, i)
        columns = sql[tokens[i].end : tokens[close].start].strip()
        i = close + 1
    settings = ""
    if i < len(tokens) and tokens[i].is_word("SETTINGS"):
        j = i + 1
        while j < len(tokens) and not (
            tokens[j].depth == 0 and tokens[j].is_word("VALUES", "FORMAT", "SELECT", "WITH")
        ):
            j += 1
        settings = sql[tokens[i].start : tokens[j - 1].end]
        i = j
    rest = tokens[i:]
    if not rest:
        return InsertStatement(target, columns, settings)
    if len(rest) == 1 and rest[0].is_word("VALUES"):
        return InsertStatement(target, columns, settings)
    if len(rest) == 2 and rest[0].is_word("FORMAT") and rest[1].kind in ("word", "quoted"):
        return InsertStatement(target, columns, settings)
    return None


def strip_format(sql: str) -> str:
    """`sql` without a trailing `FORMAT name` (and trailing semicolons)."""
    tokens = tokenize(sql)
    if (
        len(tokens) >= 3
        and tokens[-2].is_word("FORMAT")
        and tokens[-2].depth == 0
        and tokens[-1].kind in ("word", "quoted")
        and not tokens[0].is_word("INSERT")
    ):
        return sql[: tokens[-2].start].rstrip()
    return sql[: tokens[-1].end] if tokens else sql


def parse_set(sql: str) -> list[tuple[str, str | None]] | None:
    """`SET a = 1, b = 'x', c = DEFAULT` -> [(a, '1'), (b, 'x'), (c, None)]; None if not a SET.

    Values keep ClickHouse's literal text except strings, which are unquoted: the engine quotes
    whatever is not a number when it applies a setting.
    """
    tokens = tokenize(sql)
    if len(tokens) < 4 or not tokens[0].is_word("SET"):
        return None
    pairs: list[tuple[str, str | None]] = []
    i = 1
    while i < len(tokens):
        if tokens[i].kind not in ("word", "quoted") or i + 1 >= len(tokens):
            return None
        if tokens[i + 1].text != "=":
            return None
        name = identifier(tokens[i])
        j = i + 2
        while j < len(tokens) and not (tokens[j].text == "," and tokens[j].depth == 0):
            j += 1
        value_tokens = tokens[i + 2 : j]
        if not value_tokens:
            return None
        if len(value_tokens) == 1 and value_tokens[0].kind == "string":
            value: str | None = unquote(value_tokens[0].text)
        elif len(value_tokens) == 1 and value_tokens[0].is_word("DEFAULT"):
            value = None
        else:
            value = sql[value_tokens[0].start : value_tokens[-1].end]
        pairs.append((name, value))
        i = j + 1
    return pairs


def parse_use(sql: str) -> str | None:
    tokens = tokenize(sql)
    if len(tokens) == 2 and tokens[0].is_word("USE") and tokens[1].kind in ("word", "quoted"):
        return identifier(tokens[1])
    return None
