"""FastAPI app instrumented with prometheus-fastapi-instrumentator, served by
uvicorn in tests/real_targets.rs (`uvicorn fastapi_app:app`).

/metrics is excluded from instrumentation, as deployments normally do: a
scrape must not change the counters the test compares.
"""

from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator

app = FastAPI()


@app.get("/hello")
def hello():
    return {"hello": "world"}


@app.get("/items/{item_id}")
def read_item(item_id: int):
    return {"item_id": item_id}


@app.post("/items")
def create_item():
    return {"created": True}


Instrumentator(excluded_handlers=["/metrics"]).instrument(app).expose(app)
