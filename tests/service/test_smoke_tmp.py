import httpx
from tests.conftest import *
def test_smoke(service_url, fakes):
    r = httpx.post(service_url + "/api/jobs/jsearch", json={"jobTitle": "python developer", "city": "Austin"})
    print(r.status_code, r.headers, r.text[:600])
    r = httpx.post(service_url + "/api/jobs/jsearch", json={"jobTitle": "python developer", "city": "Austin"})
    print(r.status_code, r.headers.get("x-cache"))
    r = httpx.post(service_url + "/api/jobs/theirstack", json={"jobTitle": "python developer", "city": "Austin"})
    print(r.status_code, r.headers.get("x-cache"), r.text[:300])
    print(httpx.get(service_url + "/ready").text)
    r = httpx.post(service_url + "/api/jobs/theirstack", json={"jobTitle": ""})
    print(r.status_code, r.text)
    assert fakes.jsearch.calls == 1
