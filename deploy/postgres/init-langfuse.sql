-- Langfuse keeps its own database beside Switchyard's (docker-compose.yaml's langfuse service).
CREATE DATABASE langfuse;
