# Does nothing: used to measure boot time to the ready marker and power off.
true
