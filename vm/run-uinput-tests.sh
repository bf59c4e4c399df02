#!/usr/bin/env bash
# Runs the uinput tests (crates/oriel-input/tests/uinput_vm.rs) on a real
# kernel: our machines' kernels lack the uinput module, Debian's has it.
# Boots Debian's kernel in qemu (software emulation: KVM is not available
# here) with an initramfs holding busybox, evdev.ko, uinput.ko and the
# static (musl) test binary, and returns the tests' exit code.
# Downloads and builds are cached under target/vm/.
#
# Exit code: the test binary's (0 passed, 101 a test failed), 1 when the VM
# gave none (build failure, boot failure, timeout), 77 skipped because the
# VM's ingredients (qemu, the kernel package, the musl target) could not be
# fetched here. Under CI (CI set) a skip is a failure: CI must run them.
set -euo pipefail
cd "$(dirname "$0")/.."
VM=target/vm
skip() {
  echo "vm: SKIPPED uinput tests: $*" >&2
  if [ -n "${CI:-}" ]; then echo "vm: CI is set, so a skip is a failure" >&2; exit 1; fi
  exit 77
}
TARGET=x86_64-unknown-linux-musl
mkdir -p "$VM"

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
# The initramfs has no libc: busybox must be the static build (Debian's
# plain busybox package is dynamic; busybox-static replaces it).
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || need+=(busybox-static)
command -v xz >/dev/null || need+=(xz-utils)
command -v cpio >/dev/null || need+=(cpio)
if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || skip "could not install ${need[*]}"
fi
if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  rustup target add "$TARGET" || skip "rustup could not add $TARGET"
fi

# Debian's current kernel image, unpacked (not installed).
if [ ! -f "$VM/kernel.ok" ]; then
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
  [ -n "$pkg" ] || { apt-get update -qq; pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}'); }
  rm -rf "$VM/kernel" && mkdir -p "$VM/kernel"
  (cd "$VM" && rm -f linux-image-*.deb && apt-get download -qq "$pkg" 2>/dev/null) || skip "could not download $pkg"
  dpkg-deb -x "$VM"/linux-image-*.deb "$VM/kernel"
  # Keep only what the VM uses (the unpacked package is ~500 MB).
  find "$VM/kernel" -type f ! -path '*/boot/vmlinuz-*' ! -path '*/drivers/input/evdev.ko*' \
    ! -path '*/drivers/input/misc/uinput.ko*' -delete
  rm -f "$VM"/linux-image-*.deb
  touch "$VM/kernel.ok"
fi
vmlinuz=$(ls "$VM"/kernel/boot/vmlinuz-*)
modules=$(ls -d "$VM"/kernel/lib/modules/*)

# The test binary, static (musl; x11rb and evdev are pure Rust over libc).
build_log="$VM/build.log"
bin=$(cargo test -p oriel-input --test uinput_vm --target "$TARGET" --no-run --message-format=json 2>"$build_log" \
  | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1) || true
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  cat "$build_log" >&2
  echo "vm: could not build the musl test binary" >&2
  exit 1
fi

# The initramfs.
root="$VM/initramfs"
rm -rf "$root" && mkdir -p "$root"/{bin,dev,proc,sys,tmp}
cp /bin/busybox "$root/bin/busybox"
for m in drivers/input/evdev drivers/input/misc/uinput; do
  src=$(ls "$modules/kernel/$m".ko* 2>/dev/null | head -1)
  [ -n "$src" ] || { echo "vm: module $m not found in $modules" >&2; exit 1; }
  case "$src" in
    *.xz) xz -dc "$src" > "$root/$(basename "$m").ko" ;;
    *.zst) zstd -qdc "$src" > "$root/$(basename "$m").ko" ;;
    *) cp "$src" "$root/$(basename "$m").ko" ;;
  esac
done
cp "$bin" "$root/uinput_vm"
cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t devtmpfs dev /dev
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox insmod /evdev.ko
/bin/busybox insmod /uinput.ko
/uinput_vm --ignored --test-threads=1
echo "ORIEL-VM-EXIT=$?"
/bin/busybox poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$VM/initramfs.cpio.gz"

log="$VM/console.log"
start=$(date +%s)
# tcg: KVM does not work on our (nested) machines. The default pc machine:
# microvm hung once. -no-reboot and panic=-1 turn a panic into an exit.
timeout 300 qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot \
  -kernel "$vmlinuz" -initrd "$VM/initramfs.cpio.gz" \
  -append "console=ttyS0 panic=-1 quiet" > "$log" 2>&1 || true
code=$(sed -n 's/.*ORIEL-VM-EXIT=\([0-9]*\).*/\1/p' "$log" | tail -1)
# The tests' output; the whole console (minus firmware noise) if they did
# not finish.
tr -d '\r' < "$log" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g' > "$log.txt"
if [ -n "$code" ] && grep -q '^running [0-9]* tests' "$log.txt"; then
  sed -n '/^running [0-9]* tests/,$p' "$log.txt" | grep -vE '^\s*$|ORIEL-VM-EXIT|reboot: Power down' || true
else
  grep -vE '^\s*$|SeaBIOS|iPXE|Booting from ROM' "$log.txt" || true
fi
echo "vm: uinput tests finished in $(( $(date +%s) - start )) s, exit ${code:-none}"
exit "${code:-1}"
