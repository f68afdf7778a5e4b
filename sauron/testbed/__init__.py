"""The network-namespace 5G testbed: a reference UPF, a gNB with its UEs and
a data network, in namespaces, with impairments that are the ground truth of
the tests."""
