// Expo config plugin entry point (Expo looks for app.plugin.js at the package root).
module.exports = require('./plugin/withS3BgUploader');
