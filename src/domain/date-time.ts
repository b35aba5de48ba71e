// Date-times as the API takes them: RFC 3339 / ISO 8601 with an explicit offset; anything else is
// ambiguous (a server's local time zone must not decide what a client meant).
export const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i;
