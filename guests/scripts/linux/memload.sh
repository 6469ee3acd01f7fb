# Keeps the guest dirtying memory at a fixed rate (bench/migrate.sh): 32 MiB
# rewritten and checked at 16 MiB/s, until the VM is stopped.
echo MEMLOAD
exec memcheck 32 16
