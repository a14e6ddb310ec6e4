"""The scoring service in process (httpx's ASGI transport): routes, bodies, bad requests, tokens, the
micro-batcher, reload and rollback, series ingest resumed from its checkpoint, metrics, the dashboard files."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pyarrow as pa
import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
httpx = pytest.importorskip("httpx", reason="httpx is not installed")

from anomalia.model import Model  # noqa: E402
from anomalia.serve import ServiceSettings, create_app  # noqa: E402

from service_client import RECORD, points, series_frame, shared_models  # noqa: E402

TOKEN = "s3cret-token-0123456789"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return shared_models(tmp_path_factory)


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def app(models, tmp_path):
    return create_app([models["table"], models["series"]], settings=ServiceSettings(state_dir=tmp_path / "state"))


def test_models_and_manifest(app):
    async def go():
        async with client(app) as c:
            listed = (await c.get("/v1/models")).json()["models"]
            m = (await c.get("/v1/models/table")).json()
            s = (await c.get("/v1/models/series")).json()
            assert (await c.get("/healthz")).json() == {"status": "ok"}
            assert (await c.get("/readyz")).json()["models"] == ["table", "series"]
            return listed, m, s

    listed, m, s = run(go())
    assert [x["name"] for x in listed] == ["table", "series"]
    assert m["version"] and m["detector"] == "autoencoder" and m["input_kind"] == "table"
    assert [c["name"] for c in m["schema"]] == ["a", "b", "color", "ok", "c"]
    assert {c["type"] for c in m["schema"]} == {"number", "text", "boolean"}
    assert m["threshold"]["value"] > 0 and m["calibration"]["n"] > 0 and m["training"]["epochs"] == 3
    assert s["input_kind"] == "series" and s["time_column"] == "time" and s["window"] == 8


def test_scores_match_the_library_and_every_body_format(app, models):
    import pandas as pd

    frame = pd.read_csv(models["table"].parent / "train.csv").drop(columns="label").iloc[:50]
    expected = Model.load(models["table"]).score(frame, explain="flagged")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    stream = pa.BufferOutputStream()
    with pa.ipc.new_stream(stream, table.schema) as w:
        w.write_table(table)
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    bodies = {
        "application/json": {"json": {"records": frame.to_dict(orient="records")}},
        "text/csv": {"content": frame.to_csv(index=False).encode()},
        "application/vnd.apache.parquet": {"content": parquet.getvalue()},
        "application/vnd.apache.arrow.stream": {"content": stream.getvalue().to_pybytes()},
    }

    async def go():
        async with client(app) as c:
            out = {}
            for ctype, kw in bodies.items():
                r = await c.post("/v1/models/table/score", headers={"content-type": ctype}, **kw)
                assert r.status_code == 200, (ctype, r.text)
                out[ctype] = r.json()["results"]
            arrow = await c.post("/v1/models/table/score", content=bodies["application/vnd.apache.arrow.stream"]
                                 ["content"], headers={"content-type": "application/vnd.apache.arrow.stream",
                                                       "accept": "application/vnd.apache.arrow.stream"})
            return out, arrow

    out, arrow = run(go())
    for ctype, results in out.items():
        assert [r["row"] for r in results] == list(range(50)), ctype
        np.testing.assert_allclose([r["score"] for r in results], expected.score, rtol=1e-5, err_msg=ctype)
        assert [r["is_anomaly"] for r in results] == expected.is_anomaly.tolist()
        for r in results:
            assert (r["severity"] is None) == (not r["is_anomaly"])
            if r["is_anomaly"]:
                assert r["contributions"] and {"feature", "share", "value"} <= r["contributions"][0].keys()
    got = pa.ipc.open_stream(arrow.content).read_all()
    assert arrow.headers["content-type"].startswith("application/vnd.apache.arrow.stream")
    np.testing.assert_allclose(got.column("score").to_numpy(), expected.score, rtol=1e-5)
    assert "severity" in got.schema.names


def test_concurrent_single_records_share_forward_passes(models, tmp_path):
    app = create_app([models["table"]], settings=ServiceSettings(state_dir=tmp_path, batch_wait=0.02))
    records = [{**RECORD, "c": float(i) / 10} for i in range(40)]
    expected = Model.load(models["table"]).score(pa.Table.from_pylist(records), explain="none").score

    async def go():
        async with client(app) as c:
            rs = await asyncio.gather(*[c.post("/v1/models/table/score", json={"records": [r]}) for r in records])
            return [r.json()["results"][0]["score"] for r in rs], (await c.get("/metrics")).text

    scores, metrics = run(go())
    np.testing.assert_allclose(scores, expected, rtol=1e-5)  # each answer is its own record's score
    count = next(float(line.split()[-1]) for line in metrics.splitlines()
                 if line.startswith("anomalia_microbatch_rows_count"))
    assert 1 <= count < 40  # fewer forward passes than requests
    assert 'anomalia_rows_scored_total{model="table"} 40.0' in metrics


@pytest.mark.parametrize(
    ("body", "ctype", "status", "says"),
    [
        (b"{not json", "application/json", 422, "not valid JSON"),
        (b"[]", "application/json", 422, "JSON object"),
        (b"{}", "application/json", 422, "no 'records'"),
        (b'{"records": 3}', "application/json", 422, "must be a list"),
        (b'{"records": []}', "application/json", 422, "empty"),
        (b'{"records": [5]}', "application/json", 422, "records[0] must be an object"),
        (b'{"records": [{"a": 1}]}', "application/json", 422, "lacks the column(s) ['b', 'color', 'ok', 'c']"),
        (b'{"records": [{"a": "x", "b": 1, "color": "red", "ok": true, "c": 1}]}', "application/json", 422,
         "records[0].a must be a number"),
        (b'{"records": [{"a": 1, "b": 1, "color": 7, "ok": true, "c": 1}]}', "application/json", 422,
         "records[0].color must be a string"),
        (b'{"records": [{"a": 1, "b": 1, "color": "red", "ok": 1, "c": 1}]}', "application/json", 422,
         "records[0].ok must be true or false"),
        (b"a,b\n1,2\n", "text/csv", 422, "lacks the column(s) ['color', 'ok', 'c']"),
        (b"garbage", "application/vnd.apache.arrow.stream", 422, "cannot be read"),
        (b"hello", "text/plain", 415, "unsupported content type"),
    ],
)
def test_bad_bodies_get_4xx_naming_the_problem(app, body, ctype, status, says):
    async def go():
        async with client(app) as c:
            return await c.post("/v1/models/table/score", content=body, headers={"content-type": ctype})

    r = run(go())
    assert r.status_code == status, r.text
    assert says in r.json()["error"], r.json()


def test_bad_parameters_limits_and_unknown_names(models, tmp_path):
    app = create_app([models["table"]], settings=ServiceSettings(state_dir=tmp_path, max_records=5, max_body=4096))

    async def go():
        async with client(app) as c:
            return {
                "model": await c.post("/v1/models/nope/score", json={"records": [RECORD]}),
                "top_k": await c.post("/v1/models/table/score?top_k=abc", json={"records": [RECORD]}),
                "explain": await c.post("/v1/models/table/score?explain=some", json={"records": [RECORD]}),
                "count": await c.post("/v1/models/table/score", json={"records": [RECORD] * 6}),
                "size": await c.post("/v1/models/table/score", json={"records": [RECORD], "pad": "x" * 5000}),
                "nan": await c.post("/v1/models/table/score", json={"records": [{**RECORD, "a": None}]}),
                "alerts": await c.get("/v1/alerts"),
                "route": await c.get("/v1/nothing"),
            }

    r = run(go())
    assert r["model"].status_code == 404 and "no model named 'nope'" in r["model"].json()["error"]
    assert r["top_k"].status_code == 422 and r["top_k"].json()["field"] == "top_k"
    assert r["explain"].status_code == 422 and r["explain"].json()["field"] == "explain"
    assert r["count"].status_code == 413 and "limit is 5" in r["count"].json()["error"]
    assert r["size"].status_code == 413 and "limit of 4,096 bytes" in r["size"].json()["error"]
    assert r["nan"].status_code == 422 and "column 'a' has missing" in r["nan"].json()["error"]
    assert r["alerts"].status_code == 404 and "--respond" in r["alerts"].json()["error"]
    assert r["route"].status_code == 404


def test_tokens_guard_every_route_but_health(models, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# service tokens\n{TOKEN}\nanother-token-abcdefghij\n")
    app = create_app([models["table"]], token_file=tokens, settings=ServiceSettings(state_dir=tmp_path))
    paths = [("GET", "/"), ("GET", "/v1/models"), ("GET", "/v1/models/table"), ("GET", "/metrics"),
             ("GET", "/docs"), ("GET", "/openapi.json"), ("GET", "/static/dashboard.js"),
             ("POST", "/v1/models/table/score"), ("POST", "/v1/models/table/reload"), ("GET", "/v1/alerts")]

    async def go():
        async with client(app) as c:
            open_ = [(await c.get(p)).status_code for p in ("/healthz", "/readyz")]
            without = [(await c.request(m, p)).status_code for m, p in paths]
            wrong = [(await c.request(m, p, headers={"authorization": "Bearer wrong-token-0123456789"})).status_code
                     for m, p in paths]
            good = await c.post("/v1/models/table/score", json={"records": [RECORD]},
                                headers={"authorization": f"Bearer {TOKEN}"})
            second = await c.get("/v1/models", headers={"authorization": "Bearer another-token-abcdefghij"})
            signin = await c.get(f"/?token={TOKEN}")
            cookie = signin.headers.get("set-cookie", "")
            page = await c.get("/", headers={"cookie": cookie.split(";")[0]})
            return open_, without, wrong, good, second, signin, cookie, page

    open_, without, wrong, good, second, signin, cookie, page = run(go())
    assert open_ == [200, 200]
    assert without == [401] * len(paths) and wrong == [401] * len(paths)
    assert good.status_code == 200 and second.status_code == 200
    assert signin.status_code == 303 and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert page.status_code == 200 and "anomalia" in page.text
    bad = tmp_path / "short"
    bad.write_text("short\n")
    with pytest.raises(ValueError, match="at least 16"):
        create_app([models["table"]], token_file=bad, settings=ServiceSettings(state_dir=tmp_path))
    (tmp_path / "empty").write_text("# nothing\n")
    with pytest.raises(ValueError, match="holds no token"):
        create_app([models["table"]], token_file=tmp_path / "empty", settings=ServiceSettings(state_dir=tmp_path))


def test_reload_swaps_a_new_version_and_rollback_restores_it(models, tmp_path):
    import shutil

    folder = shutil.copytree(models["table"], tmp_path / "m")
    app = create_app([folder], settings=ServiceSettings(state_dir=tmp_path / "state"))

    async def go():
        async with client(app) as c:
            v1 = (await c.get("/v1/models/m")).json()["version"]
            nothing = await c.post("/v1/models/m/rollback")
            model = Model.load(folder)
            model.detector.fitted_threshold().threshold_ = 0.0  # the new version flags everything
            await asyncio.sleep(1.1)  # versions carry the time in seconds
            model.save(folder)
            during = [c.post("/v1/models/m/score", json={"records": [RECORD]}) for _ in range(20)]
            reload = c.post("/v1/models/m/reload")
            answers = await asyncio.gather(*during, reload, *[c.post("/v1/models/m/score", json={"records": [RECORD]})
                                                              for _ in range(20)])
            after = (await c.post("/v1/models/m/score", json={"records": [RECORD]})).json()
            back = (await c.post("/v1/models/m/rollback")).json()
            again = (await c.post("/v1/models/m/score", json={"records": [RECORD]})).json()
            return v1, nothing, answers, after, back, again

    v1, nothing, answers, after, back, again = run(go())
    assert nothing.status_code == 409 and "no previous version" in nothing.json()["error"]
    assert all(a.status_code == 200 for a in answers)  # nothing fails across the swap
    reloaded = answers[20].json()
    assert reloaded["previous_version"] == v1 and reloaded["version"] != v1
    assert after["version"] == reloaded["version"] and after["results"][0]["is_anomaly"]
    assert back["version"] == v1 and again["version"] == v1


def _ingest_batches(app, batches, key="host-1"):
    async def go():
        async with client(app) as c:
            out = []
            for b in batches:
                r = await c.post(f"/v1/models/series/ingest/{key}", json={"points": points(b)})
                assert r.status_code == 200, r.text
                out.append(r.json())
            return out

    return run(go())


def test_ingest_resumes_each_key_from_its_checkpoint(models, tmp_path):
    frame = series_frame(200, seed=3)
    frame.loc[120:123, "cpu"] += 5.0
    batches = [frame.iloc[i : i + 20] for i in range(0, 200, 20)]
    det = Model.load(models["series"]).detector
    expected, _ = det.score_stream(frame, det.new_stream())

    one = create_app([models["series"]], settings=ServiceSettings(state_dir=tmp_path / "a"))
    straight = _ingest_batches(one, batches)
    first = create_app([models["series"]], settings=ServiceSettings(state_dir=tmp_path / "b"))
    part1 = _ingest_batches(first, batches[:4])
    second = create_app([models["series"]], settings=ServiceSettings(state_dir=tmp_path / "b"))  # a restart
    part2 = _ingest_batches(second, batches[4:])
    scores = [p["score"] for r in straight for p in r["results"]]
    resumed = [p["score"] for r in part1 + part2 for p in r["results"]]
    assert resumed == scores  # exactly: the state round-trips through the checkpoint
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    assert straight[-1]["n_seen"] == 200 and part2[0]["results"][0]["step"] == 80
    assert any(p["is_anomaly"] for r in straight for p in r["results"][120 % 20 :])
    assert all(p["warmup"] and p["score"] == 0.0 for p in straight[0]["results"][:7])

    async def more():
        async with client(second) as c:
            stale = await c.post("/v1/models/series/ingest/host-1", json={"points": points(batches[2])})
            other = await c.post("/v1/models/series/ingest/host-2", json={"points": points(batches[0])})
            bad = await c.post("/v1/models/series/ingest/host-3", json={"points": [{"time": "2026-01-01", "cpu": 1}]})
            wrong = await c.post("/v1/models/series/ingest/host-3",
                                 json={"points": [{"time": "2026-01-01", "cpu": "x", "mem": 1}]})
            table = await c.post("/v1/models/series/score", json={"records": [RECORD]})
            streams = (await c.get("/v1/models/series/streams")).json()
            return stale, other, bad, wrong, table, streams

    stale, other, bad, wrong, table, streams = run(more())
    assert stale.status_code == 409 and "already at" in stale.json()["error"]
    assert other.status_code == 200 and other.json()["results"][0]["step"] == 0  # keys are independent
    assert bad.status_code == 422 and "lacks ['mem']" in bad.json()["error"]
    assert wrong.status_code == 422 and wrong.json()["field"] == "points[0].cpu"
    assert table.status_code == 422 and "/ingest/" in table.json()["error"]
    assert {s["key"] for s in streams["streams"]} == {"host-1", "host-2"}


def test_metrics_dashboard_and_openapi(app):
    async def go():
        async with client(app) as c:
            await c.post("/v1/models/table/score", json={"records": [RECORD]})
            await c.post("/v1/models/table/score", content=b"{", headers={"content-type": "application/json"})
            return [await c.get(p) for p in ("/metrics", "/", "/static/dashboard.js", "/static/dashboard.css",
                                             "/openapi.json", "/docs")]

    metrics, page, js, css, spec, docs = run(go())
    text = metrics.text
    for name in ("anomalia_requests_total", "anomalia_request_seconds_bucket", "anomalia_rows_scored_total",
                 "anomalia_microbatch_rows_bucket", "anomalia_outbox_depth"):
        assert name in text, name
    assert 'route="/v1/models/{name}/score",status="422"' in text
    assert page.status_code == 200 and '<script src="/static/dashboard.js">' in page.text
    assert "http" not in page.text  # nothing from another origin
    assert js.status_code == 200 and "EventSource" in js.text and css.status_code == 200
    paths = spec.json()["paths"]
    for p in ("/v1/models/{name}/score", "/v1/models/{name}/ingest/{key}", "/v1/models", "/v1/models/{name}",
              "/v1/models/{name}/reload", "/v1/models/{name}/rollback", "/v1/alerts", "/v1/incidents",
              "/v1/alerts/{alert_id}/ack", "/v1/alerts/{alert_id}/resolve", "/v1/alerts/{alert_id}/false-positive",
              "/v1/alerts/{alert_id}/new-normal", "/metrics", "/healthz", "/readyz"):
        assert p in paths, p
    assert docs.status_code == 200


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["serve", "no/such/folder"], "model folder no/such/folder does not exist"),
        (["serve", "{table}", "--name", "a", "--name", "b"], "2 --name value(s) for 1 model folder(s)"),
        (["serve", "{table}", "--respond", "missing.yaml"], "--respond missing.yaml: no such file"),
        (["serve", "{table}", "--token-file", "missing-tokens"], "cannot read the token file"),
    ],
)
def test_serve_command_errors_are_one_line(models, tmp_path, capsys, monkeypatch, args, says):
    from anomalia.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main([a.format(table=models["table"]) for a in args])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and says in " ".join(err.split()), err
    assert "Traceback" not in err


def test_table_ingest_and_image_scoring(models, tmp_path):
    from PIL import Image

    from anomalia.detectors import ConvAutoEncoder

    rng = np.random.default_rng(0)
    images = (rng.random((48, 1, 16, 16)) * 60 + 100).astype(np.uint8)
    det = ConvAutoEncoder(channels=(4, 8), latent=4, epochs=1, batch_size=32, random_state=0).fit(images)
    Model(det, name="img").save(tmp_path / "img")
    app = create_app([models["table"], tmp_path / "img"], settings=ServiceSettings(state_dir=tmp_path / "s"))
    png = io.BytesIO()
    Image.fromarray(images[0, 0]).save(png, format="PNG")

    async def go():
        async with client(app) as c:
            return (
                await c.post("/v1/models/table/ingest/site-1", json={"points": [RECORD, {**RECORD, "c": 9.0}]}),
                await c.post("/v1/models/img/score?maps=true", content=png.getvalue(),
                             headers={"content-type": "image/png"}),
                await c.post("/v1/models/img/score", json={"images": images[:3, 0].tolist()}),
                await c.post("/v1/models/img/score", content=b"not a png", headers={"content-type": "image/png"}),
                await c.post("/v1/models/img/score", json={"images": [[1, 2], [3, 4]]}),
            )

    table, one, three, broken, shape = run(go())
    assert table.status_code == 200 and [r["row"] for r in table.json()["results"]] == [0, 1]
    assert table.json()["key"] == "site-1"
    expected = det.anomaly_score(images[:3])
    assert one.status_code == 200, one.text
    got = one.json()["results"][0]
    assert got["score"] == pytest.approx(float(expected[0]), rel=1e-5)
    assert np.asarray(got["anomaly_map"]).shape == (16, 16)
    np.testing.assert_allclose([r["score"] for r in three.json()["results"]], expected, rtol=1e-5)
    assert broken.status_code == 422 and "not a readable image" in broken.json()["error"]
    assert shape.status_code == 422 and "must have shape" in shape.json()["error"]
