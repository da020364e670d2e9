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
cmake --build build -j"$(nproc)" --target edgesync edgesync-hub
BIN="$ROOT/build/agent/edgesync"
HUB="$ROOT/build/hub/edgesync-hub"
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1

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
free_port() {
  local port=$1
  for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null || break
    port=$(( 20000 + RANDOM % 40000 ))
  done
  echo "$port"
}
PORT=$(free_port 18883)
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
"$BIN" status --config edgesync.json | head -3 || true  # DOWN (exit 2): the agent was stopped

# ---------------------------------------------------------------------------------------------
# The other end: PostgreSQL, edgesync-hub, two stores' agents and a feed of till events; the hub
# turns them into live stock.
echo
echo "== the hub side: PostgreSQL, edgesync-hub, and two stores' agents"
PG=/usr/lib/postgresql/15/bin
PGPORT=$(free_port 15432)
mkdir -p pg
AS_PG=()
if [ "$(id -u)" = 0 ]; then chown postgres pg; AS_PG=(runuser -u postgres --); fi
"${AS_PG[@]}" "$PG/initdb" -D "$DEMO/pg/data" -A trust -U postgres --no-sync -E UTF8 \
  --locale=C.UTF-8 > pg-init.log 2>&1
"${AS_PG[@]}" "$PG/pg_ctl" -D "$DEMO/pg/data" -l "$DEMO/pg/postgres.log" -w \
  -o "-p $PGPORT -k $DEMO/pg -c listen_addresses=127.0.0.1" start > /dev/null
stop_pg() { "${AS_PG[@]}" "$PG/pg_ctl" -D "$DEMO/pg/data" -m fast stop > /dev/null 2>&1 || true; }
trap 'stop_pg; cleanup' EXIT
"$PG/psql" -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -c "CREATE DATABASE hub" postgres
DB="host=127.0.0.1 port=$PGPORT user=postgres dbname=hub"
echo "PostgreSQL 15 on 127.0.0.1:$PGPORT"

WEBPORT=$(free_port 18090)
cat > hub.json <<CONF
{
  "broker": { "uris": ["ssl://127.0.0.1:$PORT"], "client_id": "demo-hub",
              "ca_file": "$DEMO/ca.pem", "cert_file": "$DEMO/client.pem", "key_file": "$DEMO/client.key" },
  "topic_prefix": "edgesync/v1",
  "database": "$DB",
  "web": { "listen": "127.0.0.1:$WEBPORT" }
}
CONF
"$HUB" run --config hub.json > hub-service.log 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q "consuming" hub-service.log && break; sleep 0.1; done
grep "edgesync-hub:" hub-service.log || true

# Two stores, one till box each: the same agent binary, each with its own outbox and socket.
for store in store-042 store-017; do
  mkdir -p "$store"
  cat > "$store/edgesync.json" <<CONF
{
  "device":  { "id": "pos-01", "store_id": "$store" },
  "storage": { "path": "$DEMO/$store/outbox.db" },
  "ingest":  { "socket": "$DEMO/$store/ingest.sock", "contracts_dir": "$ROOT/config/contracts/events" },
  "control": { "socket": "$DEMO/$store/control.sock" },
  "hub": { "uri": "ssl://127.0.0.1:$PORT", "topic_prefix": "edgesync/v1", "client_id": "demo-$store",
           "ca_file": "$DEMO/ca.pem", "cert_file": "$DEMO/client.pem", "key_file": "$DEMO/client.key" },
  "retry": { "initial_ms": 200, "max_ms": 5000 }
}
CONF
  "$BIN" agent --config "$store/edgesync.json" > "$store/agent.log" 2>&1 &
  PIDS+=($!)
done
for store in store-042 store-017; do
  for _ in $(seq 100); do [ -S "$store/ingest.sock" ] && break; sleep 0.1; done
done
[ -n "$WEBPORT" ] && grep -q "page on" hub-service.log && \
  echo "the hub's page: http://127.0.0.1:$WEBPORT/ (stock changes live; run with --keep to browse it)"

# The feed: a count opens each store's day, then sales, a return and a delivery, a few a second.
now() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }
till() {  # store type data
  printf '{"type":"%s","occurred_at":"%s","data":%s}\n' "$2" "$(now)" "$3" |
    "$BIN" send --socket "$DEMO/$1/ingest.sock" > /dev/null
}
sale() {  # store receipt sku qty
  till "$1" pos.sale.completed "{\"receipt_id\":\"$2\",\"till_id\":\"till-1\",\"operator_id\":\"op-1\",\"currency\":\"EUR\",\"lines\":[{\"line_no\":1,\"sku\":\"$3\",\"qty\":$4,\"unit_price_minor\":199,\"line_total_minor\":$((199 * $4))}],\"total_minor\":$((199 * $4))}"
}
show_stock() {  # one line per store: sku=on_hand (edgesync-hub stock prints the full table)
  for store in store-042 store-017; do
    printf '%s: %s\n' "$store" "$("$PG/psql" -X -A -t -h 127.0.0.1 -p "$PGPORT" -U postgres hub -c \
      "SELECT COALESCE(string_agg(sku || '=' || on_hand, '  ' ORDER BY sku), '-')
       FROM hub_stock WHERE store_id = '$store'")"
  done
}
echo
echo "== the feed, and stock at the hub as it moves"
for store in store-042 store-017; do
  till "$store" inventory.counted '{"count_id":"open","location_id":"shop-floor","operator_id":"op-1","lines":[{"sku":"4006381333931","on_hand":40},{"sku":"5000112548167","on_hand":25}]}'
done
sleep 0.5; show_stock
for round in 1 2 3 4 5; do
  sale store-042 "r$round" 4006381333931 $round
  sale store-017 "r$round" 5000112548167 1
  [ $round = 3 ] && till store-042 pos.return.completed '{"return_id":"ret-1","till_id":"till-1","operator_id":"op-1","currency":"EUR","lines":[{"line_no":1,"sku":"4006381333931","qty":1,"unit_price_minor":199,"line_total_minor":199,"reason":"unwanted","restock":true}],"refund_total_minor":199}'
  [ $round = 4 ] && till store-017 inventory.received '{"delivery_id":"d-1","supplier_id":"sup-9","location_id":"back-room","operator_id":"op-1","lines":[{"sku":"5000112548167","qty":12}]}'
  sleep 0.5; echo "-- after round $round"; show_stock
done
echo
echo "== edgesync-hub stock --store store-042"
"$HUB" stock --database "$DB" --store store-042
echo
echo "== edgesync-hub lag"
"$HUB" lag --database "$DB"
echo
echo "== edgesync-hub gaps"
"$HUB" gaps --database "$DB" || true
echo
echo "== end to end, till to stock row (the agent's acceptance to the hub's commit)"
"$PG/psql" -X -A -t -h 127.0.0.1 -p "$PGPORT" -U postgres hub -c "
  SELECT count(*) || ' events; p50 ' ||
         round((1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM committed_at - received_at)))::numeric, 1) ||
         ' ms, max ' || round((1000 * max(extract(epoch FROM committed_at - received_at)))::numeric, 1) || ' ms'
  FROM hub_events WHERE store_id IN ('store-042', 'store-017')"
if [ "$KEEP" = 1 ]; then
  echo
  echo "running until Ctrl-C (page: http://127.0.0.1:$WEBPORT/)"
  while true; do sleep 3600; done
fi
