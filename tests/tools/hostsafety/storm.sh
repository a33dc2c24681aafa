#!/bin/bash
# storm.sh FRESH DIR MODE PORT SECONDS PARALLEL [LIB]: runs of fresh executables (a
# new copy of FRESH, a new inode, for every run: `FRESH MODE PORT`, MODE tcp or tls,
# so that each passes discovery's gates), PARALLEL at a time, for SECONDS (0: until
# DIR/stop exists); with LIB, each run preloads a new copy of that shared object too
# (held where its dynamic linker maps it, while the daemon examines it). Writes its session id to DIR/sid, a line per started run to
# DIR/started and "N STATUS MS" per finished run to DIR/done (MS: its wall time).
# Run it under setsid: the tests watch its session for stopped processes. The copies
# stay until the test ends: a file deleted frees its inode number for the next copy,
# which discovery would then take for the file it examined under that number.
fresh=$1 dir=$2 mode=$3 port=$4 seconds=$5 par=$6 lib=${7:-}
read -r -a stat </proc/self/stat
echo "${stat[5]}" >"$dir/sid.tmp"
mv "$dir/sid.tmp" "$dir/sid"
end=$((SECONDS + seconds))
n=0
while [ ! -e "$dir/stop" ] && { [ "$seconds" -eq 0 ] || [ $SECONDS -lt $end ]; }; do
	for ((i = 0; i < par; i++)); do
		n=$((n + 1))
		cp "$fresh" "$dir/s.$n"
		preload=
		if [ -n "$lib" ]; then
			cp "$lib" "$dir/l.$n.so"
			preload=$dir/l.$n.so
		fi
		echo "$n" >>"$dir/started"
		(
			t0=${EPOCHREALTIME/./}
			LD_PRELOAD=$preload "$dir/s.$n" "$mode" "$port" 2>>"$dir/errors"
			rc=$?
			t1=${EPOCHREALTIME/./}
			echo "$n $rc $(((t1 - t0) / 1000))" >>"$dir/done"
		) &
	done
	wait
done
