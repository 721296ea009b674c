"""1-client Health from the Python client for SECS seconds: prints {"rate": calls/s}.
usage: PYTHONPATH=build/client/python python3 health.py URL SECS (key in SANDPROC_TOKEN)"""
import json
import sys
import time

import sandproc
from sandproc.v1.system_pb2 import HealthRequest
from sandproc.v1.system_sprpc import SystemStub

url, secs = sys.argv[1], float(sys.argv[2])
stub = SystemStub(sandproc.Channel(url))
req = HealthRequest()
for _ in range(200):  # warm up
    stub.Health(req)
n, start = 0, time.perf_counter()
while True:
    for _ in range(100):
        stub.Health(req)
    n += 100
    spent = time.perf_counter() - start
    if spent >= secs:
        break
print(json.dumps({"rate": n / spent, "calls": n}))
