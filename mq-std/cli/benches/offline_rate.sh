#!/bin/bash
# How fast an away node's messages go to its catalog queue and come back
# out of it, end to end through two mqd nodes on one SQLite catalog:
# node b has a persistent subscriber and is SIGKILLed; once node a treats it
# as away, N QoS 1 messages are published at a; the time until a's
# mq_mesh_offline_stored_total reaches N (the hand-on rate, which includes
# waiting for a's next heartbeat), then b is started again and the time
# until its subscriber has all N (the drain rate, b's start included).
#
# usage: offline_rate.sh MQD MQ [N]   (release builds: cargo build --release
# -p mq-cli --bin mqd --bin mq; N at most 9,000, below the outbox's and the
# catalog queue's default bounds). Uses ports 17420-17431, curl and bc.
set -u
MQD=$1; MQ=$2; N=${3:-9000}
D=$(mktemp -d); CAT=sqlite:$D/cat.db
start() { $MQD --node $1 --catalog $CAT --listen 127.0.0.1:$2 --http 127.0.0.1:$3 --data-dir $D/$1 > $D/$1.log 2>&1 & echo $!; }
metric() { curl -s http://127.0.0.1:$1/metrics | awk -v m=$2 '$1==m {print $2}'; }
B=$(start b 17420 17430); A=$(start a 17421 17431)
sleep 3
timeout 20 $MQ sub --server 127.0.0.1:17420 --client-id s1 --persistent --count 1 'rate.>' > /dev/null &
S=$!
for i in $(seq 1 40); do $MQ pub --server 127.0.0.1:17421 --qos 0 rate.probe x >/dev/null 2>&1; sleep 0.25; kill -0 $S 2>/dev/null || break; done
kill -9 $B; 
until [ "$(metric 17431 mq_mesh_away)" = "1" ]; do sleep 0.2; done
t0=$(date +%s.%N)
$MQ pub --server 127.0.0.1:17421 --count $N --size 100 rate.x > /dev/null
t1=$(date +%s.%N)
until [ "$(metric 17431 mq_mesh_offline_stored_total)" -ge "$N" ] 2>/dev/null; do sleep 0.05; done
t2=$(date +%s.%N)
B=$(start b 17420 17430)
until curl -sf http://127.0.0.1:17430/health > /dev/null; do sleep 0.02; done
timeout 300 $MQ sub --server 127.0.0.1:17420 --client-id s1 --persistent --count $N 'rate.>' > $D/got.txt
t3=$(date +%s.%N)
echo "published $N in $(echo "$t1-$t0"|bc) s; all in the catalog after $(echo "$t2-$t0"|bc) s: $(echo "$N/($t2-$t0)"|bc) msg/s handed on"
echo "drained and received $(wc -l < $D/got.txt) in $(echo "$t3-$t2"|bc) s (b's start included): $(echo "$N/($t3-$t2)"|bc) msg/s"
kill $A $B 2>/dev/null; wait 2>/dev/null; rm -rf $D
