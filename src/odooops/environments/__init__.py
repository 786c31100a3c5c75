"""Running environments: what a successful build leaves serving, how it is
supervised, routed to by Host, put to sleep and woken."""
