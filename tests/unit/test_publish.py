"""publish.prune: leftovers of a killed refresh are removed; the published run never is."""
from warehouse import publish


def test_prune_removes_leftovers_of_a_killed_refresh_but_keeps_current(tmp_path):
    out = tmp_path
    live = out / "runs" / "20260101T000000Z"
    live.mkdir(parents=True)
    publish.mark_published(live)
    publish.publish(out, live)
    half_built = out / "runs" / "20260102T000000Z"       # killed before publish
    half_built.mkdir()
    (out / ".current.999").symlink_to("runs/20260102T000000Z")
    (out / "sites" / ".center_a.tmp999").mkdir(parents=True)
    (out / "sites" / ".center_a.old999").mkdir()
    publish.prune(out)
    assert publish.current(out) == live.resolve()
    assert not half_built.exists()
    assert not (out / ".current.999").is_symlink()
    assert list((out / "sites").iterdir()) == []
