#!/usr/bin/env bash
# The main job, end to end on this machine: a local mosquitto with TLS (certificates made here),
# the edgesync agent, sample POS and inventory events sent through the ingest socket, and a
# subscriber standing in for the hub that prints what arrives.
#   bash .ci/demo.sh        (Debian 12, as root: installs what it needs)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
bash .ci/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target edgesync
BIN="$ROOT/build/agent/edgesync"

DEMO=$(mktemp -d /tmp/edgesync-demo-XXXXXX)
chmod 755 "$DEMO"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DEMO"
}
trap cleanup EXIT
cd "$DEMO"

echo "== certificates (a CA, the hub's server certificate, this box's client certificate)"
subj() { echo "/CN=$1"; }
openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -days 400 -subj "$(subj edgesync-demo-ca)" -out ca.pem
for who in server client; do
  openssl ecparam -name prime256v1 -genkey -noout -out $who.key 2>/dev/null
  cn=localhost; [ $who = client ] && cn=store-042-pos-01
  openssl req -new -key $who.key -subj "$(subj $cn)" -out $who.csr
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > $who.ext
  openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 398 \
    -extfile $who.ext -out $who.pem 2>/dev/null
done
# mosquitto may drop privileges: its files world-readable. The agent refuses a key that others
# may read, as it should on a box.
chmod 644 ca.key server.key
chmod 600 client.key

# A free loopback port: one that nothing answers on.
PORT=18883
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null || break
  PORT=$(( 20000 + RANDOM % 40000 ))
done
cat > mosquitto.conf <<CONF
per_listener_settings false
allow_anonymous true
max_inflight_messages 100
max_queued_messages 100000
persistence false
listener $PORT 127.0.0.1
cafile $DEMO/ca.pem
certfile $DEMO/server.pem
keyfile $DEMO/server.key
require_certificate true
CONF
[ "$(id -u)" = 0 ] && echo "user root" >> mosquitto.conf
mosquitto -c mosquitto.conf > broker.log 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
echo "== hub broker: mosquitto on ssl://127.0.0.1:$PORT (mutual TLS)"

cat > edgesync.json <<CONF
// demo configuration: the same keys as /etc/edgesync/edgesync.json
{
  "device":  { "id": "pos-01", "store_id": "store-042" },
  "storage": { "path": "$DEMO/state/outbox.db" },
  "ingest":  { "socket": "$DEMO/ingest.sock", "contracts_dir": "$ROOT/config/contracts/events" },
  "hub": { "uri": "ssl://127.0.0.1:$PORT", "topic_prefix": "edgesync/v1",
           "ca_file": "$DEMO/ca.pem", "cert_file": "$DEMO/client.pem", "key_file": "$DEMO/client.key" },
  "retry": { "initial_ms": 200, "max_ms": 5000 }
}
CONF

# The subscriber is the hub's side: every event of this store, as it arrives.
mosquitto_sub -h 127.0.0.1 -p "$PORT" --cafile ca.pem --cert client.pem --key client.key \
  -V mqttv5 -q 1 -t 'edgesync/v1/store-042/#' -F '%t  %p' > hub.log 2>&1 &
PIDS+=($!)

"$BIN" agent --config edgesync.json > agent.log 2>&1 &
AGENT=$!
PIDS+=($AGENT)
for _ in $(seq 100); do [ -S ingest.sock ] && break; sleep 0.1; done

echo "== sending sample events through the ingest socket (one reply line each)"
cat > events.ndjson <<'EV'
{"id":"till-3/r1001","type":"pos.sale.completed","v":1,"occurred_at":"2026-11-23T09:15:02.120Z","trace_id":"till-3/2026-11-23/r1001","data":{"receipt_id":"r1001","till_id":"till-3","operator_id":"op-17","currency":"EUR","lines":[{"line_no":1,"sku":"100234","gtin":"4006381333931","qty":2,"unit_price_minor":199,"line_total_minor":398}],"total_minor":398}}
{"id":"adj-3001","type":"inventory.adjusted","data":{"adjustment_id":"adj-3001","location_id":"shop-floor","operator_id":"op-09","reason":"damaged","lines":[{"sku":"100234","delta":-2}]}}
{"type":"inventory.counted","occurred_at":"2026-11-23T09:16:00Z","data":{"count_id":"cnt-0001","location_id":"shop-floor","operator_id":"op-11","lines":[{"sku":"5000112548167","on_hand":41}]}}
{"id":"till-3/r1001","type":"pos.sale.completed","v":1,"occurred_at":"2026-11-23T09:15:02.120Z","trace_id":"till-3/2026-11-23/r1001","data":{"receipt_id":"r1001","till_id":"till-3","operator_id":"op-17","currency":"EUR","lines":[{"line_no":1,"sku":"100234","gtin":"4006381333931","qty":2,"unit_price_minor":199,"line_total_minor":398}],"total_minor":398}}
{"id":"till-3/r1002","type":"pos.sale.completed","data":{"receipt_id":"r1002","till_id":"till-3","operator_id":"op-17","currency":"euro","lines":[{"line_no":1,"sku":"100234","qty":"2","unit_price_minor":199,"line_total_minor":398}],"total_minor":398}}
{"type":"Inventory Adjusted","data":{}}
EV
"$BIN" send --config edgesync.json events.ndjson || true

for _ in $(seq 50); do
  [ "$(grep -c '/events/' hub.log || true)" -ge 3 ] && break
  sleep 0.1
done
echo
echo "== what the hub received"
cat hub.log
echo
# The delivered watermark reaches the disk within a second (it is batched to spare the flash).
for _ in $(seq 30); do
  "$BIN" status --config edgesync.json --json | grep -q '"pending": *0[,}]' && break
  sleep 0.1
done
echo "== edgesync status"
"$BIN" status --config edgesync.json
echo
echo "== stopping the agent (SIGTERM)"
kill -TERM "$AGENT"
wait "$AGENT" && echo "agent exited 0"
"$BIN" status --config edgesync.json | head -3
