"""Freed memory goes back to the operating system between the chunks of a batch."""

import platform

import pytest

import rectransfer as rt
from rectransfer.serving import fanout
from rectransfer.serving import recommend as recommend_module
from rectransfer.utils import memory
from tests.conftest import make_shop


def test_glibc_is_asked_to_return_free_pages():
    asked = memory.release_freed_memory()
    assert asked is (platform.libc_ver()[0] == "glibc")


def test_without_malloc_trim_it_is_a_no_op(monkeypatch):
    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)
    assert memory.release_freed_memory() is False


@pytest.fixture
def calls(monkeypatch):
    seen = []
    for module in (recommend_module, fanout):
        monkeypatch.setattr(module, "release_freed_memory", lambda: seen.append(1) or True)
    return seen


def test_every_chunk_of_a_streamed_export_releases_what_it_freed(broad, calls):
    shop = make_shop("chunks", seed=4, n_users=50)
    chunks = list(rt.iter_recommendations(broad, shop, k=5, chunk_size=20))
    assert len(chunks) == 3 and len(calls) == 3
    assert rt.recommend(broad, shop, k=5).equals(chunks[0].vstack(chunks[1]).vstack(chunks[2]))


def test_every_fanned_out_chunk_releases_what_it_freed(broad, calls):
    prepared = broad.prepare(make_shop("fanout", seed=5, n_users=50))
    # chunks are cut on scoring blocks, so a small shop is one chunk: score two by hand
    rows = fanout.customer_chunks(prepared, chunk_size=20)[0]
    for half in (rows[: len(rows) // 2], rows[len(rows) // 2 :]):
        fanout.recommend_chunk(broad, prepared, half, k=5)
    assert len(calls) == 2
