"""Through the whole local system (API, Redis, worker, sandbox): a CSV sent in is read by pandas in python-data, and
the plot the program saves comes back as an artifact that decodes as a PNG."""

from __future__ import annotations

import base64

from helpers.data_programs import DATA_CSV, PLOT_PROGRAM, PLOT_STDOUT, png_size


def test_a_csv_goes_in_and_a_plot_comes_out(api, prepared_runtimes):
    body = {
        "code": PLOT_PROGRAM,
        "runtime": "python-data",
        "files": [{"path": "data.csv", "content_base64": base64.b64encode(DATA_CSV).decode()}],
        "limits": {"timeout_seconds": 30},
    }
    response = api.post("/v1/executions", params={"wait": 30}, json=body)
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["status"] == "succeeded", document["stderr"] or document["error"]
    assert document["stdout"] == PLOT_STDOUT and document["runtime"] == "python-data"
    listed = {artifact["path"]: artifact for artifact in document["artifacts"]}
    assert sorted(listed) == ["plot.png", "report.html"] and not document["artifacts_truncated"]
    assert listed["plot.png"]["content_type"] == "image/png"

    plot = api.get(f"/v1/executions/{document['id']}/artifacts/plot.png")
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"
    assert len(plot.content) == listed["plot.png"]["size"]
    width, height = png_size(plot.content)
    assert width >= 100 and height >= 100

    report = api.get(f"/v1/executions/{document['id']}/artifacts/report.html")
    assert report.content == b"<script>alert(document.domain)</script>"
    assert report.headers["content-type"] == "application/octet-stream"
    assert report.headers["content-disposition"].startswith("attachment;")
    assert report.headers["x-content-type-options"] == "nosniff"
    assert report.headers["content-security-policy"] == "default-src 'none'; sandbox"


def test_the_standard_runtime_has_no_data_packages_and_still_returns_artifacts(api):
    code = (
        "try:\n    import numpy\nexcept ImportError:\n    print('no numpy')\n"
        "open('outputs/notes.txt', 'w').write('written')\n"
    )
    document = api.post("/v1/executions", params={"wait": 30}, json={"code": code}).json()
    assert document["status"] == "succeeded" and document["stdout"] == "no numpy\n"
    assert document["artifacts"] == [{"path": "notes.txt", "size": 7, "content_type": "text/plain"}]
    notes = api.get(f"/v1/executions/{document['id']}/artifacts/notes.txt")
    assert notes.content == b"written" and notes.headers["content-disposition"].startswith("attachment;")
