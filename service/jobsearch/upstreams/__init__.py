"""One small client per paid job API, on a shared retrying, circuit-broken base."""
