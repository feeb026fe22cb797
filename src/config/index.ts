export { ConfigError, type ConfigIssue, formatPath, loadConfigFile, parseConfigText } from "./load.js";
