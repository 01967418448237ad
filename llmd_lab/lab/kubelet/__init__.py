"""The simulated nodes' kubelet: lifecycle stages as data (``stages.yaml``), programs chosen by a container's
command (``programs``), the container runtime (``runtime``) and the component (``kubelet``)."""
