/** Entry point of the plugin executable (bundled to one file, packaged as a Node SEA). */
import { runPlugin } from './pluginMain.js';

void runPlugin(process);
