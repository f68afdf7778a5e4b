"""The agent's view of the control plane: PDU sessions learned from PFCP or
from an SMF's session API, the slice each belongs to, and the data-path
classification maps kept in step with them."""
