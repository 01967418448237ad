'use strict'

// {{year}}: the build year for the footer, so the template never needs editing.
module.exports = () => new Date().getUTCFullYear().toString()
