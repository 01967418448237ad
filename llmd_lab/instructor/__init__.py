"""The instructor's kit: catch an attendee up, see the class, size the cluster, capture a cluster as a lab profile.

Everything here runs as the instructor against the lab or a real cluster through the same public library the
notebooks use (never the lab's internals), so a rehearsal on the lab exercises the code the class will use.
"""
