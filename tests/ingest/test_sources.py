"""The record splitter of delimited files, checked against Python's csv reader as the oracle."""

from __future__ import annotations

import csv
import io
import random

import pytest

from marketlab.ingest.sources import split_records


def _oracle(text: str, **dialect) -> list[tuple[int, list[str]]]:
    """(first physical line, fields) per record, as Python's csv reader sees them."""
    reader = csv.reader(io.StringIO(text, newline=""), **dialect)
    out, consumed = [], 0
    for row in reader:
        out.append((consumed + 1, row))
        consumed = reader.line_num
    return out


def _fields(record: bytes, **dialect) -> list[str]:
    rows = list(csv.reader(io.StringIO(record.decode(), newline=""), **dialect))
    assert len(rows) <= 1, record  # one record's text never holds a second record
    return rows[0] if rows else []


@pytest.mark.parametrize("seed", range(4))
def test_random_text_splits_where_the_csv_module_does(seed):
    """Random soup of quotes, delimiters and the three line breaks: same records, same lines."""
    rng = random.Random(seed)
    alphabet = ["a", "7", " ", "é", ",", ",", '"', '"', '""', "\n", "\r\n", "\r"]
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        got = list(split_records(text.encode()))
        assert [(line, _fields(rec)) for line, rec, _ in got] == _oracle(text), repr(text)
        # a quote still open at the end swallows a line appended after it
        if _oracle(text + "\nZ")[-1][1] != ["Z"]:
            assert got[-1][2] and not any(u for _, _, u in got[:-1]), repr(text)
        else:
            assert not any(u for _, _, u in got), repr(text)


def test_written_records_with_line_breaks_come_back_whole():
    rng = random.Random(7)
    pieces = ["FRAME", '7"', "a,b", "\n", "\r\n", "536999,22728,X,1,2010-12-01 08:45:00,1.0,1.0,France", ""]
    rows = [[rng.choice(pieces) + rng.choice(pieces) for _ in range(4)] for _ in range(300)]
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    got = list(split_records(buf.getvalue().encode()))
    assert [_fields(rec) for _, rec, _ in got] == rows
    physical = [r.count("\r\n") + "".join(r).replace("\r\n", "").count("\n") for r in map("".join, rows)]
    starts = [1 + sum(n + 1 for n in physical[:i]) for i in range(len(rows))]
    assert [line for line, _, _ in got] == starts


def test_doubled_quote_injected_line_and_line_numbers():
    data = (b'h1,h2\n'
            b'1,"RECORD FRAME 7"" SINGLE SIZE "\n'
            b'2,"A\n536999,22728,INJECTED,1,2010-12-01 08:45:00,1.0,12583.0,France"\r\n'
            b'\n'
            b'3,"x\r\ny"\r'
            b'4,\xff\xfe tail')
    assert list(split_records(data)) == [
        (1, b"h1,h2", False),
        (2, b'1,"RECORD FRAME 7"" SINGLE SIZE "', False),
        (3, b'2,"A\n536999,22728,INJECTED,1,2010-12-01 08:45:00,1.0,12583.0,France"', False),
        (5, b"", False),  # a blank line is a record of its own (quarantined as blank_line)
        (6, b'3,"x\r\ny"', False),
        (8, b"4,\xff\xfe tail", False),  # undecodable bytes pass through untouched
    ]


def test_unterminated_quote_runs_to_the_end_as_one_record():
    data = b'1,ok\n2,"never closed\n3,lost?\n4,"\n'
    # RFC 4180 has no way back: the quote on line 2 closes on line 4, and a last quote that never does
    assert list(split_records(data)) == [(1, b"1,ok", False), (2, b'2,"never closed\n3,lost?\n4,"', False)]
    assert list(split_records(data + b'5,"open\n6,x\n')) == [
        (1, b"1,ok", False), (2, b'2,"never closed\n3,lost?\n4,"', False), (5, b'5,"open\n6,x\n', True)]


def test_backslash_escape_when_configured():
    data = b'1,"7\\" FRAME",x\n2,"a\\\\",y\n3,"b\\\nc",z\n4,plain\\,w\n'
    got = list(split_records(data, escape="\\"))
    assert [line for line, _, _ in got] == [1, 2, 3, 5]
    dialect = {"escapechar": "\\", "doublequote": False}
    assert [_fields(rec, **dialect) for _, rec, _ in got[:3]] == [
        ["1", '7" FRAME', "x"], ["2", "a\\", "y"], ["3", "b\nc", "z"]]
    # in RFC mode the backslash is an ordinary character: the first quote closes after it
    rfc = list(split_records(data))
    assert [line for line, _, _ in rfc] == [1, 2, 3, 5]
    assert [_fields(rec) for _, rec, _ in rfc[:2]] == [["1", '7\\ FRAME"', "x"], ["2", "a\\\\", "y"]]


def test_other_delimiter_and_quote():
    data = b"a;'x;\ny';'it''s'\nb;c;d\n"
    got = list(split_records(data, delimiter=";", quote="'", escape="'"))
    assert [(line, _fields(rec, delimiter=";", quotechar="'")) for line, rec, _ in got] == [
        (1, ["a", "x;\ny", "it's"]), (3, ["b", "c", "d"])]
