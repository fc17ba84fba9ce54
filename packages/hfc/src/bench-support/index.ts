export { EtcdCluster, type EtcdTiming, etcdVersion, findOrInstallEtcd } from "./etcd-cluster.js";
export { type Figure, goalFigure, reportFigure } from "./figure.js";
