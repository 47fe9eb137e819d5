"""Stage 4, forward: the forward code of each traced module read in order (flow), and what one forward
pass runs per mode and per rank, with its collectives (run)."""
