'use strict'

// {{detag html}}: strip inline markup from a title so it can go in <title>.
const TAG_RX = /<[^>]+>/g

module.exports = (html) => (html ? String(html).replace(TAG_RX, '') : '')
