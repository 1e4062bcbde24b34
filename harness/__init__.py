"""Run and drive the product on one machine: processes, ports, scratch databases,
machine services, load.

Shared by the suite (tests/) and the benchmarks (bench/), which both use it and
never each other. It imports only the product (`jobsearch`, `infra`) and
libraries; tests/test_layers.py holds every package to its arrows.

  servers    free ports, and an ASGI app served on a real socket in a thread
  processes  a server as a process of its own (its log, its workers, its CPU and RSS)
  postgres   scratch databases on the machine's PostgreSQL, private clusters to stop
  machine    the machine's PostgreSQL and Redis, started when they are down
  load       a batch of calls at a fixed concurrency, every outcome kept
  background a steady load in a thread while something else happens (a rollout, a fault)
  poller     a fixed-schedule /health poller in a process of its own
  swarm_cluster  a three-node Docker-in-Docker swarm running the whole topology
"""
