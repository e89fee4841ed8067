-- The role the API of the compose trial runs as (deploy/compose.yaml); trial password only.
CREATE ROLE esms_app LOGIN PASSWORD 'esms-app-trial-only';
