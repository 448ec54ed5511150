#!/usr/bin/env bash
# The main job, on a sensible default: build blkrep and serve a 1 GiB
# sparse volume over NBD on 127.0.0.1:10809 until Ctrl-C.
# Later versions grow this into a replicated pair with a mounted filesystem.
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/ensure-make.sh
make -s deps
make -s -j2
mkdir -p .cache
vol=.cache/demo-volume.img
[ -e "$vol" ] || truncate -s 1G "$vol"
addr=${BLKREP_LISTEN:-127.0.0.1:10809}
cat <<MSG
blkrep is serving $vol ($(du -h --apparent-size "$vol" | cut -f1)) on $addr.
Connect with any NBD client, for example:
  nbdinfo nbd://$addr/
  qemu-io -f raw nbd://$addr/ -c 'write -P 0x5a 0 1M' -c 'read -P 0x5a 0 1M'
  nbdcopy some.img nbd://$addr/
  fio --name=t --ioengine=nbd --uri=nbd://$addr/ --rw=randwrite --bs=4k --size=64M
  nbd-client ${addr%:*} ${addr##*:} /dev/nbd0     (on a kernel with nbd.ko)
Press Ctrl-C to stop.
MSG
exec ./blkrep serve "$vol" --listen "$addr"
