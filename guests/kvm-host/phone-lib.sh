# Sourced by the phone scenarios (/phone-lib.sh in the emulated host): a
# phone in /tmp/phone whose one VM, "open", counts under KVM
# (scripts/linux/snapshot.sh on a copy of the test disk), and `phone`, the
# phone CLI aimed at it. `start_phone MEMORY [SCRIPT [LINE]]` writes the
# manifest and starts it: the guest runs scripts/linux/SCRIPT.sh (default
# snapshot), and LINE (e.g. "cpus = 2") is added to the VM's table.
st=/tmp/phone
phone() { pocketvisor phone "$@" --phone "$st"; }
start_phone() {
    cp /guest/disk.img /tmp/disk.img
    cat > /tmp/phone.toml <<EOT
[phone]
name = "nested"
state_dir = "$st"
memory = "$1"
background_cpu = 100

[[vm]]
name = "open"
role = "open"
kernel = "/guest/Image"
initrd = "/guest/initramfs.cpio.gz"
cmdline = "console=ttyAMA0 quiet cryptomgr.notests pv.run=${2:-snapshot}"
mem = "160M"
disks = ["/tmp/disk.img"]
accel = "kvm"
${3:-}
EOT
    pocketvisor phone up --detach /tmp/phone.toml
}
