"""Fleet (R19): every verified recording also in the unit's central store.

* ``store``   — an S3 bucket with Object Lock (Ceph RGW tested; MinIO or any S3 with Object
  Lock by configuration): content-addressed uploads confirmed by read-back.
* ``locks``   — the COMPLIANCE retention and legal hold an object must carry, from the station's
  own retention decision (extended, never shortened).
* ``central`` — the catalog's changes pushed to a central PostgreSQL in audit order, once;
  ``central_schema`` creates that database's tables.
* ``sync``    — one pass over the durable queues in the catalog; ``service`` runs it in the
  daemon; ``fetch`` brings a copy back, verified; ``status`` says how far behind it is.
"""
