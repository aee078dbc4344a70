#!/usr/bin/env bash
# The side-by-side run recorded in RESULTS.md (session 12): one peers.py invocation with every library and the
# dense floor, iirsnn in bf16-mixed, then interleaved fp32 / bf16-mixed pairs of iirsnn, one process each (this
# VM's step times move by up to +-25 % between processes). About 30 minutes of exclusive CPU on 2 cores.
#
#   PYTHONPATH=/path/to/peer/libs bash benchmarks/peers_run.sh TAG
#
# Writes benchmarks/results/peers_fp32_TAG.json, peers_bf16_TAG.json and peers_pairs_TAG.txt (one RESULT line
# per run); tables: python benchmarks/peers_table.py benchmarks/results/peers_fp32_TAG.json
set -euo pipefail
tag=${1:?usage: peers_run.sh TAG}
peers=${PEERS_PY:-../shared/bench/peers.py}
out=benchmarks/results
python "$peers" --libs dense-floor,snntorch,spikingjelly,norse,iirsnn --workloads mlp,temporal,conv,temporal-long \
    --json "$out/peers_fp32_$tag.json"
IIRSNN_PRECISION=bf16-mixed python "$peers" --libs iirsnn --workloads mlp,temporal,conv,temporal-long \
    --json "$out/peers_bf16_$tag.json"
pairs="$out/peers_pairs_$tag.txt"
: > "$pairs"
for workload in mlp temporal conv; do
    n=5; [ "$workload" = conv ] && n=3
    for _ in $(seq "$n"); do
        for precision in fp32 bf16-mixed; do
            echo "$workload $precision $(IIRSNN_PRECISION=$precision python "$peers" --one iirsnn "$workload" | tail -1)" >> "$pairs"
        done
    done
done
